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
        // Written in place rather than pushed: this runs over every source pixel, and the
        // fixed-size loop body lets the compiler keep it branch-free.
        let mut out = vec![0u8; self.width as usize * self.height as usize * 3];
        for (o, p) in out.chunks_exact_mut(3).zip(self.data.chunks_exact(4)) {
            let a = u32::from(p[3]);
            let white = 255 * (255 - a) + 127;
            // c*a/255 + 255*(255-a)/255, rounded.
            o[0] = ((u32::from(p[0]) * a + white) / 255) as u8;
            o[1] = ((u32::from(p[1]) * a + white) / 255) as u8;
            o[2] = ((u32::from(p[2]) * a + white) / 255) as u8;
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

    /// Averages `k` x `k` blocks (see [`BoxShrink`]).
    pub fn box_shrink(self, k: u32) -> Self {
        if k <= 1 {
            return self;
        }
        let mut shrink = BoxShrink::new(self.width, self.height, self.layout, k);
        for row in self
            .data
            .chunks_exact(self.width as usize * self.layout.channels())
        {
            shrink.push_row(row);
        }
        shrink.finish()
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

    /// The `w` x `h` window at (`x`, `y`), clamped to the image; the whole image when that
    /// window is all of it.
    pub fn crop(self, x: u32, y: u32, w: u32, h: u32) -> Self {
        let w = w.min(self.width);
        let h = h.min(self.height);
        let x = x.min(self.width - w);
        let y = y.min(self.height - h);
        if (x, y, w, h) == (0, 0, self.width, self.height) {
            return self;
        }
        let c = self.layout.channels();
        let stride = self.width as usize * c;
        let mut data = Vec::with_capacity(w as usize * h as usize * c);
        for row in y as usize..(y + h) as usize {
            let start = row * stride + x as usize * c;
            data.extend_from_slice(&self.data[start..start + w as usize * c]);
        }
        Self {
            width: w,
            height: h,
            layout: self.layout,
            data,
        }
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

/// Averages `k` x `k` blocks of rows fed one at a time (alpha-weighted for RGBA, so transparent
/// pixels lend no colour; edge blocks average the pixels they have). The cheap first stage of a
/// large reduction, like libvips' shrink before its reduce. Fed straight from a row-by-row
/// decoder, the full-size image never exists in memory: only one row of sums.
pub struct BoxShrink {
    k: usize,
    width: usize,
    layout: Layout,
    acc: Vec<u32>,
    rows: usize,
    out: Vec<u8>,
    out_rows: u32,
}

impl BoxShrink {
    /// `k` is capped at 64 (sums of 64 x 64 x 255 x 255 still fit in a u32); 1 copies rows.
    pub fn new(width: u32, height: u32, layout: Layout, k: u32) -> Self {
        let k = k.clamp(1, 64) as usize;
        let width = width as usize;
        let out_len = width.div_ceil(k) * (height as usize).div_ceil(k) * layout.channels();
        Self {
            k,
            width,
            layout,
            acc: vec![0; width * layout.channels()],
            rows: 0,
            out: Vec::with_capacity(out_len),
            out_rows: 0,
        }
    }

    /// One source row of `width` pixels in the layout given to [`BoxShrink::new`].
    pub fn push_row(&mut self, row: &[u8]) {
        let row = &row[..self.acc.len().min(row.len())];
        if self.k == 1 {
            self.out.extend_from_slice(row);
            self.out_rows += 1;
            return;
        }
        if self.layout == Layout::Rgba {
            for (a, p) in self.acc.chunks_exact_mut(4).zip(row.chunks_exact(4)) {
                let al = u32::from(p[3]);
                a[0] += u32::from(p[0]) * al;
                a[1] += u32::from(p[1]) * al;
                a[2] += u32::from(p[2]) * al;
                a[3] += al;
            }
        } else {
            for (a, &v) in self.acc.iter_mut().zip(row) {
                *a += u32::from(v);
            }
        }
        self.rows += 1;
        if self.rows == self.k {
            self.emit();
        }
    }

    fn emit(&mut self) {
        let (k, w, c) = (self.k, self.width, self.layout.channels());
        let rows = self.rows as u32;
        for x0 in (0..w).step_by(k) {
            let x1 = (x0 + k).min(w);
            let n = rows * (x1 - x0) as u32;
            let mut sum = [0u32; 4];
            for px in self.acc[x0 * c..x1 * c].chunks_exact(c) {
                for (s, v) in sum.iter_mut().zip(px) {
                    *s += v;
                }
            }
            if self.layout == Layout::Rgba {
                let a = sum[3];
                for s in &sum[..3] {
                    self.out.push((s + a / 2).checked_div(a).unwrap_or(0) as u8);
                }
                self.out.push(((a + n / 2) / n) as u8);
            } else {
                for s in &sum[..c] {
                    self.out.push(((s + n / 2) / n) as u8);
                }
            }
        }
        self.acc.fill(0);
        self.rows = 0;
        self.out_rows += 1;
    }

    /// The shrunk image; a last partial block of rows counts as one output row.
    pub fn finish(mut self) -> Pixels {
        if self.rows > 0 {
            self.emit();
        }
        Pixels {
            width: self.width.div_ceil(self.k) as u32,
            height: self.out_rows,
            layout: self.layout,
            data: self.out,
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
