//! An 8-bit pixel buffer and the few operations the engine needs on it.

use fast_image_resize as fr;

use super::EngineError;

/// Channel layout of a [`Pixels`] buffer; always 8 bits per channel, rows packed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Gray,
    Rgb,
    /// Straight (not premultiplied) alpha.
    Rgba,
}

impl Layout {
    pub fn channels(self) -> usize {
        match self {
            Self::Gray => 1,
            Self::Rgb => 3,
            Self::Rgba => 4,
        }
    }

    fn pixel_type(self) -> fr::PixelType {
        match self {
            Self::Gray => fr::PixelType::U8,
            Self::Rgb => fr::PixelType::U8x3,
            Self::Rgba => fr::PixelType::U8x4,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Pixels {
    pub width: u32,
    pub height: u32,
    pub layout: Layout,
    pub data: Vec<u8>,
}

impl Pixels {
    pub fn new(
        width: u32,
        height: u32,
        layout: Layout,
        data: Vec<u8>,
    ) -> Result<Self, EngineError> {
        let need = width as usize * height as usize * layout.channels();
        if data.len() < need || width == 0 || height == 0 {
            return Err(EngineError::Corrupt(format!(
                "decoder returned {} bytes for {width}x{height}",
                data.len()
            )));
        }
        let mut data = data;
        data.truncate(need);
        Ok(Self {
            width,
            height,
            layout,
            data,
        })
    }

    /// Drops an alpha channel that is fully opaque (saves work and bytes downstream).
    pub fn drop_opaque_alpha(self) -> Self {
        if self.layout != Layout::Rgba || !self.data.chunks_exact(4).all(|p| p[3] == 255) {
            return self;
        }
        self.into_rgb()
    }

    /// Composites onto white if there is alpha; converts to RGB.
    pub fn flatten_on_white(self) -> Self {
        if self.layout != Layout::Rgba {
            return self;
        }
        let mut out = Vec::with_capacity(self.width as usize * self.height as usize * 3);
        for p in self.data.chunks_exact(4) {
            let a = u32::from(p[3]);
            let inv = 255 - a;
            for &c in &p[..3] {
                // c*a/255 + 255*(255-a)/255, rounded.
                let v = u32::from(c) * a + 255 * inv;
                out.push(((v + 127) / 255) as u8);
            }
        }
        Self {
            width: self.width,
            height: self.height,
            layout: Layout::Rgb,
            data: out,
        }
    }

    /// Drops alpha without compositing (only for opaque images) or expands gray.
    pub fn into_rgb(self) -> Self {
        let data = match self.layout {
            Layout::Rgb => return self,
            Layout::Rgba => self
                .data
                .chunks_exact(4)
                .flat_map(|p| [p[0], p[1], p[2]])
                .collect(),
            Layout::Gray => self.data.iter().flat_map(|&g| [g, g, g]).collect(),
        };
        Self {
            width: self.width,
            height: self.height,
            layout: Layout::Rgb,
            data,
        }
    }

    /// Averages `k` x `k` blocks (alpha-weighted for RGBA, so transparent pixels lend no
    /// colour). Edge blocks average the pixels they have. The cheap first stage of a large
    /// reduction, like libvips' shrink before its reduce; `k` is capped at 64.
    pub fn box_shrink(self, k: u32) -> Self {
        let k = k.min(64) as usize;
        if k <= 1 {
            return self;
        }
        let (w, h) = (self.width as usize, self.height as usize);
        let c = self.layout.channels();
        let (ow, oh) = (w.div_ceil(k), h.div_ceil(k));
        let mut out = Vec::with_capacity(ow * oh * c);
        let mut acc = vec![0u32; w * c];
        let rgba = self.layout == Layout::Rgba;
        for oy in 0..oh {
            let (y0, y1) = (oy * k, ((oy + 1) * k).min(h));
            acc.fill(0);
            for y in y0..y1 {
                let row = &self.data[y * w * c..(y + 1) * w * c];
                if rgba {
                    for (a, p) in acc.chunks_exact_mut(4).zip(row.chunks_exact(4)) {
                        let al = u32::from(p[3]);
                        a[0] += u32::from(p[0]) * al;
                        a[1] += u32::from(p[1]) * al;
                        a[2] += u32::from(p[2]) * al;
                        a[3] += al;
                    }
                } else {
                    for (a, &v) in acc.iter_mut().zip(row) {
                        *a += u32::from(v);
                    }
                }
            }
            let rows = (y1 - y0) as u32;
            for ox in 0..ow {
                let (x0, x1) = (ox * k, ((ox + 1) * k).min(w));
                let n = rows * (x1 - x0) as u32;
                let mut sum = [0u32; 4];
                for x in x0..x1 {
                    for (ch, s) in sum.iter_mut().enumerate().take(c) {
                        *s += acc[x * c + ch];
                    }
                }
                if rgba {
                    let a = sum[3];
                    for s in &sum[..3] {
                        out.push((s + a / 2).checked_div(a).unwrap_or(0) as u8);
                    }
                    out.push(((a + n / 2) / n) as u8);
                } else {
                    for s in &sum[..c] {
                        out.push(((s + n / 2) / n) as u8);
                    }
                }
            }
        }
        Self {
            width: ow as u32,
            height: oh as u32,
            layout: self.layout,
            data: out,
        }
    }

    /// Resizes to exactly `w` x `h` (Lanczos3; alpha is premultiplied during the filter).
    pub fn resize(&self, w: u32, h: u32, resizer: &mut fr::Resizer) -> Result<Self, EngineError> {
        if w == self.width && h == self.height {
            return Ok(self.clone());
        }
        let pt = self.layout.pixel_type();
        let src = fr::images::ImageRef::new(self.width, self.height, &self.data, pt)
            .map_err(|e| EngineError::Corrupt(format!("resize source: {e}")))?;
        let mut dst = fr::images::Image::new(w, h, pt);
        let opts = fr::ResizeOptions::new()
            .resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Lanczos3))
            .use_alpha(self.layout == Layout::Rgba);
        resizer
            .resize(&src, &mut dst, &opts)
            .map_err(|e| EngineError::Corrupt(format!("resize: {e}")))?;
        Ok(Self {
            width: w,
            height: h,
            layout: self.layout,
            data: dst.into_vec(),
        })
    }

    /// Applies an EXIF orientation (1..=8), giving the image as it should be displayed.
    pub fn orient(self, orientation: u8) -> Self {
        if !(2..=8).contains(&orientation) {
            return self;
        }
        let (w, h) = (self.width as usize, self.height as usize);
        let c = self.layout.channels();
        let transposed = orientation >= 5;
        let (ow, oh) = if transposed { (h, w) } else { (w, h) };
        let mut out = vec![0u8; self.data.len()];
        for y in 0..h {
            for x in 0..w {
                // Where stored pixel (x, y) is displayed.
                let (dx, dy) = match orientation {
                    2 => (w - 1 - x, y),
                    3 => (w - 1 - x, h - 1 - y),
                    4 => (x, h - 1 - y),
                    5 => (y, x),
                    6 => (h - 1 - y, x),
                    7 => (h - 1 - y, w - 1 - x),
                    _ => (y, w - 1 - x), // 8
                };
                let s = (y * w + x) * c;
                let d = (dy * ow + dx) * c;
                out[d..d + c].copy_from_slice(&self.data[s..s + c]);
            }
        }
        Self {
            width: ow as u32,
            height: oh as u32,
            layout: self.layout,
            data: out,
        }
    }
}

/// Converts CMYK samples as stored in a JPEG to RGB. Adobe (Photoshop) files store the
/// values inverted (0 = full ink), which is what almost every CMYK JPEG in the wild is.
pub fn cmyk_to_rgb(data: &[u8], inverted: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() / 4 * 3);
    for p in data.chunks_exact(4) {
        let (c, m, y, k) = if inverted {
            (p[0], p[1], p[2], p[3])
        } else {
            (255 - p[0], 255 - p[1], 255 - p[2], 255 - p[3])
        };
        // Here each value is the *absence* of ink: 255 - ink.
        let k = u32::from(k);
        for v in [c, m, y] {
            out.push(((u32::from(v) * k + 127) / 255) as u8);
        }
    }
    out
}
