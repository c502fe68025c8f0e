//! Where an `!attention` crop cuts: the window with the most detail.
//!
//! libvips's attention crop (the reference the issue names) scores edges, saturation and skin
//! tones and keeps the window around the strongest region. This keeps the two signals that
//! matter on thumbnails of photos, edges (what is in focus, text, faces' features) and
//! saturated colour (subjects against sky, walls and paper), and picks the window whose sum
//! is largest, with a summed-area table so every window costs four lookups. A flat image has
//! no preference and gets the centre, as a plain `!` crop would.

use super::pixels::{Layout, Pixels};

/// The top-left corner of the `w` x `h` window of `p` with the most detail.
pub fn busiest(p: &Pixels, w: u32, h: u32) -> (u32, u32) {
    let (pw, ph) = (p.width as usize, p.height as usize);
    let (w, h) = ((w as usize).min(pw), (h as usize).min(ph));
    if (w, h) == (pw, ph) {
        return (0, 0);
    }
    let energy = energy(p);
    // sat[(y) * (pw + 1) + x]: the sum of energy over [0, x) x [0, y).
    let mut sat = vec![0u64; (pw + 1) * (ph + 1)];
    for y in 0..ph {
        let mut row = 0u64;
        for x in 0..pw {
            row += u64::from(energy[y * pw + x]);
            sat[(y + 1) * (pw + 1) + x + 1] = sat[y * (pw + 1) + x + 1] + row;
        }
    }
    let sum = |x: usize, y: usize| {
        let at = |xx: usize, yy: usize| sat[yy * (pw + 1) + xx];
        at(x + w, y + h) + at(x, y) - at(x + w, y) - at(x, y + h)
    };
    let (cx, cy) = ((pw - w) / 2, (ph - h) / 2);
    let mut best = (sum(cx, cy), 0usize, cx, cy);
    for y in 0..=ph - h {
        for x in 0..=pw - w {
            let score = sum(x, y);
            let off_centre = x.abs_diff(cx) + y.abs_diff(cy);
            // More detail wins; on a tie, the window nearer the centre.
            if score > best.0 || (score == best.0 && off_centre < best.1) {
                best = (score, off_centre, x, y);
            }
        }
    }
    (best.2 as u32, best.3 as u32)
}

/// Per pixel: the luminance gradient (horizontal plus vertical difference) plus the colour's
/// saturation (max minus min channel), each 0..=255 (the gradient clamped).
fn energy(p: &Pixels) -> Vec<u16> {
    let (pw, ph) = (p.width as usize, p.height as usize);
    let c = p.layout.channels();
    let px = |x: usize, y: usize| &p.data[(y * pw + x) * c..(y * pw + x) * c + c];
    let luma = |v: &[u8]| -> i32 {
        match p.layout {
            Layout::Gray => i32::from(v[0]),
            _ => (299 * i32::from(v[0]) + 587 * i32::from(v[1]) + 114 * i32::from(v[2])) / 1000,
        }
    };
    let mut out = vec![0u16; pw * ph];
    for y in 0..ph {
        for x in 0..pw {
            let v = px(x, y);
            let l = luma(v);
            let dx = if x + 1 < pw {
                (luma(px(x + 1, y)) - l).abs()
            } else {
                0
            };
            let dy = if y + 1 < ph {
                (luma(px(x, y + 1)) - l).abs()
            } else {
                0
            };
            let saturation = match p.layout {
                Layout::Gray => 0,
                _ => {
                    let (r, g, b) = (v[0], v[1], v[2]);
                    i32::from(r.max(g).max(b) - r.min(g).min(b))
                }
            };
            // A transparent pixel shows nothing, whatever its colour channels hold.
            let alpha = if p.layout == Layout::Rgba {
                i32::from(v[3])
            } else {
                255
            };
            let e = ((dx + dy).min(255) + saturation) * alpha / 255;
            out[y * pw + x] = e as u16;
        }
    }
    out
}
