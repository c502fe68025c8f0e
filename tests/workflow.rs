//! The image workflow against moto: upload, invoke-local (the function's own handler), list,
//! get, delete, presign. Every check reads what moto holds.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::*;
use serde_json::Value;

fn write_jpeg(path: &Path, w: u32, h: u32) {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
    });
    img.save_with_format(path, image::ImageFormat::Jpeg)
        .unwrap();
}

/// A PNG of noise: does not compress, so a few megapixels make a multipart-sized file.
fn write_noise_png(path: &Path, w: u32, h: u32) {
    let mut state: u32 = 0x1234_5678;
    let img = image::RgbImage::from_fn(w, h, |_, _| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        image::Rgb([state as u8, (state >> 8) as u8, (state >> 16) as u8])
    });
    img.save(path).unwrap();
}

struct Stack {
    dir: tempfile::TempDir,
    name: String,
    st: Value,
}

impl Stack {
    fn up(prefix: &str) -> Stack {
        let dir = tempfile::tempdir().unwrap();
        let name = stack_name(prefix);
        ok(
            dir.path(),
            &name,
            &[
                "up",
                "--image-uri",
                IMAGE,
                "--sizes",
                "64,128",
                "--format",
                "jpeg",
            ],
        );
        let st = state_json(dir.path(), &name);
        Stack { dir, name, st }
    }
    fn res(&self, id: &str) -> String {
        self.st["resources"][id]["name"]
            .as_str()
            .unwrap()
            .to_owned()
    }
    fn run(&self, args: &[&str]) -> std::process::Output {
        thumbctl(self.dir.path(), &self.name, args)
    }
    fn ok(&self, args: &[&str]) -> std::process::Output {
        ok(self.dir.path(), &self.name, args)
    }
    fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend(["--output", "json"]);
        serde_json::from_slice(&self.ok(&a).stdout).expect("one JSON document on stdout")
    }
    async fn destroy(self) {
        self.ok(&["destroy", "--yes"]);
        assert!(leftovers(&clients().await, &self.name).await.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn upload_types_from_bytes_goes_multipart_when_large_and_refuses_non_images() {
    let c = clients().await;
    let s = Stack::up("upl");
    let files = tempfile::tempdir().unwrap();
    // Named .dat: the type must come from the bytes.
    let small = files.path().join("small.dat");
    write_jpeg(&small, 40, 30);
    let big = files.path().join("big.png");
    write_noise_png(&big, 2600, 2600);
    assert!(
        std::fs::metadata(&big).unwrap().len() > 16 * 1024 * 1024,
        "big file must be multipart-sized"
    );
    let report = s.json(&[
        "upload",
        small.to_str().unwrap(),
        big.to_str().unwrap(),
        "--prefix",
        "in/",
    ]);
    assert_eq!(report["uploaded"].as_array().unwrap().len(), 2, "{report}");

    let src = s.res("source-bucket");
    for (path, key, ct) in [
        (&small, "in/small.dat", "image/jpeg"),
        (&big, "in/big.png", "image/png"),
    ] {
        let obj =
            c.s3.get_object()
                .bucket(&src)
                .key(key)
                .send()
                .await
                .expect("object in moto");
        assert_eq!(obj.content_type(), Some(ct), "{key}");
        let body = obj.body.collect().await.unwrap().into_bytes();
        assert_eq!(
            body.as_ref(),
            std::fs::read(path).unwrap().as_slice(),
            "{key}: bytes differ"
        );
    }
    let head =
        c.s3.head_object()
            .bucket(&src)
            .key("in/big.png")
            .send()
            .await
            .unwrap();
    assert!(
        head.e_tag().unwrap_or_default().contains('-'),
        "large file should have a multipart ETag: {:?}",
        head.e_tag()
    );

    // A directory, with a text file and an empty file in it: refused, all or nothing.
    let tree = files.path().join("tree");
    std::fs::create_dir_all(tree.join("sub dir")).unwrap();
    write_jpeg(&tree.join("sub dir/ü b.jpg"), 20, 20);
    std::fs::write(tree.join("notes.txt"), "not an image").unwrap();
    std::fs::write(tree.join("empty.jpg"), b"").unwrap();
    let out = s.run(&["upload", tree.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("notes.txt") && err.contains("not an image"),
        "{err}"
    );
    assert!(
        err.contains("empty.jpg") && err.contains("empty file"),
        "{err}"
    );
    let listed =
        c.s3.list_objects_v2()
            .bucket(&src)
            .prefix("sub")
            .send()
            .await
            .unwrap();
    assert_eq!(
        listed.key_count(),
        Some(0),
        "nothing may be uploaded when a file is refused"
    );

    std::fs::remove_file(tree.join("notes.txt")).unwrap();
    std::fs::remove_file(tree.join("empty.jpg")).unwrap();
    s.ok(&["upload", tree.to_str().unwrap(), "--prefix", "t/"]);
    c.s3.head_object()
        .bucket(&src)
        .key("t/sub dir/ü b.jpg")
        .send()
        .await
        .expect("key keeps the relative path");
    s.destroy().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn wait_list_get_delete_with_the_handler_run_by_invoke_local() {
    let c = clients().await;
    let s = Stack::up("flow");
    let files = tempfile::tempdir().unwrap();
    let photo = files.path().join("my cat+1 ü.jpg");
    write_jpeg(&photo, 300, 200);
    let key = "photos/my cat+1 ü.jpg";

    // `upload --wait` blocks until the item exists; the local emulator runs no Lambda, so
    // invoke-local plays the function's part meanwhile.
    let mut waiter = thumbctl_cmd(
        s.dir.path(),
        &s.name,
        &[
            "upload",
            photo.to_str().unwrap(),
            "--prefix",
            "photos/",
            "--wait",
            "--timeout",
            "60s",
            "--output",
            "json",
        ],
    );
    let waiter = waiter
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let src = s.res("source-bucket");
    // The waiter uploads first; the function runs only once the object is there.
    wait_for_object(&c, &src, key).await;
    let invoked = s.json(&["invoke-local", key]);
    assert_eq!(invoked["outcomes"][0]["outcome"], "ok", "{invoked}");
    let waited = waiter.wait_with_output().unwrap();
    assert!(
        waited.status.success(),
        "{}",
        String::from_utf8_lossy(&waited.stderr)
    );
    let report: Value = serde_json::from_slice(&waited.stdout).unwrap();
    let entry = &report["uploaded"][0];
    assert_eq!(entry["status"], "ok", "{report}");
    let thumbs = entry["thumbnails"].as_array().unwrap();
    assert_eq!(thumbs.len(), 2);

    // The thumbnails are in moto, fit their boxes, and the presigned link serves them.
    let dst = s.res("dest-bucket");
    for t in thumbs {
        let tkey = t["key"].as_str().unwrap();
        let obj =
            c.s3.get_object()
                .bucket(&dst)
                .key(tkey)
                .send()
                .await
                .expect("thumbnail in moto");
        assert_eq!(obj.content_type(), Some("image/jpeg"));
        assert_eq!(
            obj.cache_control(),
            Some("public, max-age=31536000, immutable"),
            "{tkey}"
        );
        let etag = entry["etag"].as_str().unwrap().trim_matches('"');
        assert!(
            tkey.ends_with(&format!(".{}.jpg", &etag[..16])),
            "{tkey}: the key carries the original's content id ({etag})"
        );
        let bytes = obj.body.collect().await.unwrap().into_bytes();
        let img = image::load_from_memory(&bytes).unwrap();
        let side = t["size"].as_str().unwrap().parse::<u32>().unwrap();
        assert_eq!(img.width(), side, "{tkey}: long side fills the box");
        assert_eq!(
            img.height(),
            (f64::from(side) * 2.0 / 3.0).round() as u32,
            "{tkey}: aspect kept"
        );
        let fetched = std::process::Command::new("curl")
            .args(["-sf", t["url"].as_str().unwrap()])
            .output()
            .unwrap();
        assert!(fetched.status.success());
        assert_eq!(
            fetched.stdout,
            bytes.as_ref(),
            "presigned GET serves the thumbnail"
        );
    }

    // A non-image, forced up, is recorded as failed by the handler.
    let junk = files.path().join("junk.jpg");
    std::fs::write(&junk, b"definitely not a jpeg").unwrap();
    s.ok(&["upload", junk.to_str().unwrap(), "--force"]);
    let invoked = s.json(&["invoke-local", "junk.jpg"]);
    assert_eq!(invoked["outcomes"][0]["outcome"], "failed");

    let all = s.json(&["list"]);
    let ids: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{all}");
    assert_eq!(ids[0], "junk.jpg", "newest first");
    let failed = s.json(&["list", "--status", "failed"]);
    assert_eq!(failed["items"].as_array().unwrap().len(), 1);
    assert_eq!(failed["items"][0]["error"], "not an image");
    assert_eq!(
        s.json(&["list", "--limit", "1"])["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let item = s.json(&["get", key]);
    assert_eq!(item["width"], 300);
    assert!(
        item["thumbnails"][0]["url"]
            .as_str()
            .unwrap()
            .starts_with("http")
    );
    // The placeholder the handler recorded, as `get` prints it.
    let placeholder = item["placeholder"]
        .as_str()
        .expect("a placeholder")
        .to_owned();
    let text = String::from_utf8_lossy(&s.ok(&["get", key]).stdout).into_owned();
    assert!(
        text.contains(&format!("placeholder (ThumbHash, base64): {placeholder}")),
        "{text}"
    );
    let missing = s.run(&["get", "nope.jpg"]);
    assert_eq!(missing.status.code(), Some(1));

    // delete removes the original, every thumbnail and the item, and nothing else.
    s.ok(&["delete", key, "--yes"]);
    assert!(
        c.s3.head_object()
            .bucket(&src)
            .key(key)
            .send()
            .await
            .is_err()
    );
    for t in thumbs {
        assert!(
            c.s3.head_object()
                .bucket(&dst)
                .key(t["key"].as_str().unwrap())
                .send()
                .await
                .is_err()
        );
    }
    let table = s.res("table");
    let item = c
        .dynamodb
        .get_item()
        .table_name(&table)
        .key("id", aws_sdk_dynamodb::types::AttributeValue::S(key.into()))
        .send()
        .await
        .unwrap();
    assert!(item.item.is_none());
    c.s3.head_object()
        .bucket(&src)
        .key("junk.jpg")
        .send()
        .await
        .expect("other images stay");
    s.destroy().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn presigned_put_then_get_with_plain_http() {
    let c = clients().await;
    let s = Stack::up("presign");
    let files = tempfile::tempdir().unwrap();
    let photo: PathBuf = files.path().join("p.jpg");
    write_jpeg(&photo, 50, 50);
    let put = s.json(&["presign", "uploads/p.jpg", "--put", "--expires", "10m"]);
    assert_eq!(put["method"], "PUT");
    assert_eq!(put["content_type"], "image/jpeg");
    // The Content-Type must be the one signed (and moto stores an empty object for a form type).
    let sent = std::process::Command::new("curl")
        .args([
            "-sf",
            "-X",
            "PUT",
            "-H",
            "Content-Type: image/jpeg",
            "--data-binary",
        ])
        .arg(format!("@{}", photo.display()))
        .arg(put["url"].as_str().unwrap())
        .status()
        .unwrap();
    assert!(sent.success());
    let obj =
        c.s3.get_object()
            .bucket(s.res("source-bucket"))
            .key("uploads/p.jpg")
            .send()
            .await
            .unwrap();
    assert_eq!(obj.content_type(), Some("image/jpeg"));
    assert_eq!(
        obj.body.collect().await.unwrap().into_bytes().as_ref(),
        std::fs::read(&photo).unwrap().as_slice()
    );

    let get = s.json(&["presign", "uploads/p.jpg"]);
    let fetched = std::process::Command::new("curl")
        .args(["-sf", get["url"].as_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(fetched.stdout, std::fs::read(&photo).unwrap());

    let bad = s.run(&["presign", "noext", "--put"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("--content-type"));
    let bad = s.run(&["presign", "x.jpg", "--expires", "30d"]);
    assert_eq!(bad.status.code(), Some(2));
    s.destroy().await;
}

#[test]
fn thumbnail_previews_local_files_and_reports_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let photo = dir.path().join("wide.jpg");
    write_jpeg(&photo, 400, 100);
    let bad = dir.path().join("bad.png");
    std::fs::write(&bad, b"\x89PNG\r\n\x1a\nnope").unwrap();
    let out_dir = dir.path().join("out");
    let out = thumbctl(
        dir.path(),
        "local",
        &[
            "thumbnail",
            photo.to_str().unwrap(),
            bad.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
            "--sizes",
            "100,50x50",
            "--output",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "one file failed");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["results"][1]["status"], "failed");
    // Named as the function names them: the content id is the file's MD5 (its one-part ETag).
    use md5::Digest;
    let md5: String = md5::Md5::digest(std::fs::read(&photo).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let id = &md5[..16];
    let t100 = image::open(out_dir.join(format!("100/wide.{id}.jpg"))).unwrap();
    assert_eq!((t100.width(), t100.height()), (100, 25));
    let t50 = image::open(out_dir.join(format!("50/wide.{id}.jpg"))).unwrap();
    assert_eq!((t50.width(), t50.height()), (50, 13));
}

/// HEIC goes through the engine like every other input: `thumbnail` needs nothing of its own.
/// The fixture is turned by an `irot` property (see lambda-image/tests/data): the preview must
/// be the displayed image, turned once.
#[cfg(feature = "heic")]
#[test]
fn thumbnail_reads_heic() {
    let dir = tempfile::tempdir().unwrap();
    let src =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("lambda-image/tests/data/quad_irot90.heic");
    let out_dir = dir.path().join("out");
    let out = thumbctl(
        dir.path(),
        "local",
        &[
            "thumbnail",
            src.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
            "--sizes",
            "32",
            "--format",
            "png",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let made: Vec<_> = std::fs::read_dir(out_dir.join("32"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(made.len(), 1, "{made:?}");
    let img = image::open(&made[0]).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (24, 32));
    // Stored red, green / blue, white; turned 90 degrees anticlockwise: green, white / red, blue.
    let want = [
        ((6, 8), [0, 255, 0]),
        ((18, 8), [255, 255, 255]),
        ((6, 24), [255, 0, 0]),
        ((18, 24), [0, 0, 255]),
    ];
    for ((x, y), colour) in want {
        let got = img.get_pixel(x, y).0;
        assert!(
            got.iter()
                .zip(colour)
                .all(|(g, w)| (i32::from(*g) - w).abs() <= 40),
            "({x},{y}): {got:?}, want {colour:?}"
        );
    }
}
