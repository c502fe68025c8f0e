//! `thumbctl gallery` in a real headless Chromium, driven over WebDriver (chromedriver): the
//! page uploads through its file input, shows the thumbnails the handler made, refuses a text
//! file with the reason, and deletes. Every outcome is read back from moto as well as from the
//! page, so a page that merely looks right cannot pass.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use common::*;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A child process killed when the test ends, however it ends.
struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A soft two-colour gradient with a disc: something a person would recognise in a screenshot.
fn write_image(path: &Path, w: u32, h: u32, from: [u8; 3], to: [u8; 3]) {
    let (cx, cy, r) = (w as f32 * 0.62, h as f32 * 0.4, w.min(h) as f32 * 0.22);
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let t = (x + y) as f32 / (w + h) as f32;
        let mix = |i: usize| (from[i] as f32 * (1.0 - t) + to[i] as f32 * t) as u8;
        let d = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt();
        if d < r {
            image::Rgb([250, 240, 220])
        } else {
            image::Rgb([mix(0), mix(1), mix(2)])
        }
    });
    img.save(path).expect("write test image");
}

/// Starts `thumbctl gallery` and returns it with the URL it printed.
fn start_gallery(dir: &Path, stack: &str, extra: &[&str]) -> (Killed, String) {
    let mut args = vec!["gallery", "--port", "0"];
    args.extend_from_slice(extra);
    let mut child = thumbctl_cmd(dir, stack, &args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start thumbctl gallery");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("gallery prints its URL");
    // Keep reading: the gallery must be able to go on writing.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in the gallery's first line: {line:?}"))
        .to_owned();
    (Killed(child), url)
}

async fn browser() -> (Killed, Client) {
    assert!(
        Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists(),
        "Chromium and chromedriver are not installed: run scripts/test.sh (it installs Debian's chromium and chromium-driver)"
    );
    let port = free_port();
    let driver = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let driver = Killed(driver);
    let profile = tempfile::tempdir().expect("profile dir").keep();
    let caps = json!({
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            // As root in a container: no sandbox; and nothing that reaches for the network,
            // which is closed here and would stall start-up.
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1200,900",
                format!("--user-data-dir={}", profile.display()),
            ]
        }
    });
    let caps = caps.as_object().cloned().expect("capabilities object");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match ClientBuilder::rustls()
            .expect("TLS roots")
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(c) => return (driver, c),
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("cannot start Chromium through chromedriver: {e}"),
        }
    }
}

/// Polls a JS expression in the page until it is true.
async fn wait_js(c: &Client, expr: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = c
            .execute(&format!("return Boolean({expr});"), vec![])
            .await
            .expect("run script in page");
        if v.as_bool() == Some(true) {
            return;
        }
        if Instant::now() > deadline {
            let body = c
                .execute("return document.body.innerText;", vec![])
                .await
                .unwrap_or_default();
            panic!("timed out waiting for {what}; the page shows:\n{body}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn keys_in(c: &Clients, bucket: &str) -> Vec<String> {
    c.s3.list_objects_v2()
        .bucket(bucket)
        .send()
        .await
        .expect("list objects")
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gallery_uploads_shows_refuses_and_deletes_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let stack = stack_name("gal");
    ok(
        dir.path(),
        &stack,
        &[
            "up",
            "--image-uri",
            IMAGE,
            "--sizes",
            "64,256",
            "--format",
            "jpeg",
        ],
    );
    let st = state_json(dir.path(), &stack);
    let res = |id: &str| st["resources"][id]["name"].as_str().unwrap().to_owned();
    let (source, dest, table) = (res("source-bucket"), res("dest-bucket"), res("table"));
    let aws = clients().await;

    let files = tempfile::tempdir().unwrap();
    // Names S3 events URL-encode: a space, unicode, a plus.
    let names = ["red cat.jpg", "café ☕.png", "blue+green.jpg"];
    let paths: Vec<PathBuf> = names.iter().map(|n| files.path().join(n)).collect();
    write_image(&paths[0], 640, 480, [214, 64, 69], [120, 20, 60]);
    write_image(&paths[1], 400, 400, [40, 170, 120], [20, 80, 110]);
    write_image(&paths[2], 300, 500, [60, 110, 220], [30, 170, 160]);
    let text = files.path().join("notes.txt");
    std::fs::write(&text, "not a picture\n").unwrap();

    let (_gallery, url) = start_gallery(dir.path(), &stack, &[]);
    let (_driver, c) = browser().await;
    c.goto(&url).await.expect("open the gallery");
    wait_js(
        &c,
        "document.getElementById('mode').textContent.includes('this machine')",
        "the page to say the handler runs here",
    )
    .await;

    // Three images through the page's own file input (one send, as a multi-file pick).
    let input = c.find(Locator::Css("#files")).await.expect("file input");
    let joined = paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join("\n");
    input.send_keys(&joined).await.expect("pick three files");
    wait_js(
        &c,
        "[...document.querySelectorAll('#grid .card img.thumb')].filter(i => i.complete && i.naturalWidth > 0).length === 3",
        "three thumbnails displayed and loaded",
    )
    .await;
    for name in names {
        let sel = format!(
            "[...document.querySelectorAll('#grid .card .name')].some(n => n.textContent === {})",
            json!(name)
        );
        wait_js(&c, &sel, name).await;
    }
    let mut originals = keys_in(&aws, &source).await;
    originals.sort();
    let mut expected: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    expected.sort();
    assert_eq!(
        originals, expected,
        "the source bucket holds exactly the three uploads"
    );
    // 64 and 256 for each: the page showed what the handler really wrote.
    assert_eq!(keys_in(&aws, &dest).await.len(), 6);

    // A text file is refused with the reason, and never reaches the bucket.
    let input = c.find(Locator::Css("#files")).await.expect("file input");
    input
        .send_keys(&text.display().to_string())
        .await
        .expect("pick a text file");
    wait_js(
        &c,
        "(() => { const r = document.querySelector('.upload.refused[data-name=\"notes.txt\"] .state'); return r && r.textContent.includes('not an image'); })()",
        "the text file refused with its reason",
    )
    .await;
    assert!(
        !keys_in(&aws, &source)
            .await
            .contains(&"notes.txt".to_owned())
    );
    wait_js(
        &c,
        "document.querySelectorAll('.upload.ready').length === 3",
        "each upload row to report its thumbnails ready",
    )
    .await;
    // The README's picture: three images, one refusal.
    let png = c.screenshot().await.expect("screenshot");
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("gallery.png");
    std::fs::write(&shot, &png).unwrap();
    if let Ok(to) = std::env::var("THUMBCTL_GALLERY_SCREENSHOT") {
        std::fs::write(to, &png).unwrap();
    }
    eprintln!("screenshot: {}", shot.display());

    // On a phone's width the grid reflows to two columns and nothing scrolls sideways.
    c.set_window_size(390, 844)
        .await
        .expect("phone-sized window");
    wait_js(
        &c,
        "getComputedStyle(document.getElementById('grid')).gridTemplateColumns.split(' ').length === 2 \
         && document.documentElement.scrollWidth <= window.innerWidth",
        "two columns and no horizontal scroll at 390 px",
    )
    .await;
    c.set_window_size(1200, 900)
        .await
        .expect("desktop-sized window");

    // Delete one through the page: detail, delete, confirm.
    let victim = "red cat.jpg";
    let card = c
        .find(Locator::Css(&format!("#grid .card[data-id=\"{victim}\"]")))
        .await
        .expect("the card of the image to delete");
    card.click().await.expect("open the detail");
    wait_js(&c, "document.getElementById('detail').open && document.querySelectorAll('#d-sizes img').length === 2", "the detail with both sizes").await;
    c.find(Locator::Id("d-delete"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.find(Locator::Id("c-yes"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_js(
        &c,
        &format!("!document.querySelector('#grid .card[data-id=\"{victim}\"]') && document.querySelectorAll('#grid .card[data-id]').length === 2"),
        "the deleted image gone from the page",
    )
    .await;
    assert!(!keys_in(&aws, &source).await.contains(&victim.to_owned()));
    assert!(
        !keys_in(&aws, &dest)
            .await
            .iter()
            .any(|k| k.contains("red cat")),
        "its thumbnails are gone from moto"
    );
    let item = aws
        .dynamodb
        .get_item()
        .table_name(&table)
        .key("id", AttributeValue::S(victim.into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    assert!(item.item.is_none(), "its metadata item is gone");

    c.close().await.ok();

    ok(dir.path(), &stack, &["destroy", "--yes"]);
    assert!(leftovers(&aws, &stack).await.is_empty());
}

/// What keeps other sites and other machines out: the Host check (DNS rebinding), the header
/// every changing request needs (cross-site forms), the token beyond loopback. And the API's
/// refusals leave moto untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gallery_refuses_foreign_pages_and_bad_uploads() {
    let dir = tempfile::tempdir().unwrap();
    let stack = stack_name("galg");
    ok(
        dir.path(),
        &stack,
        &["up", "--image-uri", IMAGE, "--sizes", "64"],
    );
    let source = resource_name(dir.path(), &stack, "source-bucket");
    let aws = clients().await;
    let http = reqwest::Client::new();

    let (gallery, url) = start_gallery(dir.path(), &stack, &[]);
    let port = url
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .unwrap()
        .to_owned();
    let page = http.get(&url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("thumbctl gallery"));
    let rebound = http
        .get(&url)
        .header("host", format!("attacker.example:{port}"))
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), 403, "a foreign Host is refused");
    let cross_site = http
        .post(format!("{url}api/delete"))
        .header("content-type", "application/json")
        .body(r#"{"id":"x"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        cross_site.status(),
        403,
        "a write without the page's header is refused"
    );
    let upload = |name: &str, body: &'static [u8]| {
        http.post(format!("{url}api/upload?name={name}"))
            .header("x-thumbctl-gallery", "1")
            .body(body)
            .send()
    };
    let text = upload("notes.txt", b"hello").await.unwrap();
    assert_eq!(text.status(), 415);
    assert!(text.text().await.unwrap().contains("not an image"));
    let empty = upload("empty.jpg", b"").await.unwrap();
    assert_eq!(empty.status(), 415);
    assert!(empty.text().await.unwrap().contains("empty"));
    let missing = http
        .post(format!("{url}api/delete"))
        .header("x-thumbctl-gallery", "1")
        .header("content-type", "application/json")
        .body(r#"{"id":"never uploaded.jpg"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert!(
        keys_in(&aws, &source).await.is_empty(),
        "nothing refused reached the bucket"
    );
    drop(gallery);

    // Beyond loopback: nothing without the printed token; the token sets a cookie the page's
    // own requests then carry.
    let (_open, url) = start_gallery(dir.path(), &stack, &["--bind", "0.0.0.0"]);
    let (base, token) = url.split_once("?token=").expect("a token in the URL");
    assert!(token.len() >= 32);
    assert_eq!(http.get(base).send().await.unwrap().status(), 401);
    assert_eq!(
        http.get(format!("{base}?token=wrong"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let page = http.get(&url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let cookie = page
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_owned();
    let listed = http
        .get(format!("{base}api/images"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
    let v: serde_json::Value = serde_json::from_str(&listed.text().await.unwrap()).unwrap();
    assert_eq!(v["items"], json!([]));

    ok(dir.path(), &stack, &["destroy", "--yes"]);
}
