//! DC-only decoding of progressive JPEGs, for thumbnails at 1/8 scale or smaller, and
//! DC-plus-first-AC decoding at 1/4.
//!
//! At 1/8 scale every 8x8 block becomes one pixel, its DC coefficient: the block's mean.
//! libjpeg-turbo's DCT-scaled decode computes exactly that, but a progressive file spreads
//! every block's AC coefficients over many later scans, and libjpeg-turbo Huffman-decodes all
//! of them before it can output anything (12 MP: ~118 ms, against ~31 ms for the same image
//! stored baseline; `../shared/notes/image-engine.md`). The DC coefficients come first, in one
//! small scan and, in libjpeg's standard progression, one 1-bit refinement scan near the end.
//! So this decoder reads only those: it Huffman-decodes the DC scans, steps over the
//! entropy-coded bytes of every AC scan with `memchr` looking for the next marker, and stops as
//! soon as every component's DC is complete. The result is what libjpeg-turbo gives at 1/8
//! (same block means, same box replication of subsampled chroma, which libjpeg uses instead
//! of fancy upsampling once scaled to 1x1 blocks, and its fixed-point YCbCr->RGB), within
//! rounding.
//!
//! No crate offers this (libjpeg-turbo's buffered-image mode could stop early too, but only
//! through the libjpeg API, which the bundled `turbojpeg` crate does not expose, and `mozjpeg`
//! cannot be linked beside it). It is kept narrow on purpose: 8-bit Huffman progressive
//! files with one (grey) or three (YCbCr) components and integer sampling ratios. Anything
//! else, and anything damaged before the DC is complete, returns `None`, and the caller
//! decodes with libjpeg-turbo as before, which refuses what is really broken.
//!
//! At 1/4 scale (a 512 box on a 12 MP photo, the default sizes' largest) each block becomes
//! 2x2 pixels, which need the lowest AC coefficients too. libjpeg's standard progression sends
//! those early, in each component's first AC scan (luma 1-5, chroma 1-63, at reduced
//! precision), so the decoder also Huffman-decodes the first-pass AC scans that hold zigzag 1,
//! 2 and 4, keeps those three coefficients per block, and still steps over the rest (luma's
//! 6-63 and every refinement: most of the file). The 2x2 pixels come from libjpeg-turbo's
//! own 2x2 inverse DCT arithmetic fed those coefficients; it also uses coefficients 3, 5 and
//! 7, which come later, and the refinement bits are not read, so the result is close to
//! libjpeg-turbo's 1/4 decode (1.7 of 255 on average, tested), not equal.
//!
//! One behaviour differs by design: the scans not needed are not decoded, so damage after
//! the last needed scan (a truncated upload of a progressive JPEG, say) does not stop a
//! thumbnail at these scales, which those scans could not have changed.

use super::pixels::{Layout, Pixels};

/// Most scans a file may have before we give up (libjpeg-turbo's own fuzzing limit is 500).
const SCAN_LIMIT: u32 = 500;

/// A Huffman table in canonical form: a 9-bit lookahead for the common short codes, and
/// per-length bounds for the rest (the JPEG standard's F.2.2.3 procedure).
struct Huffman {
    /// Indexed by the next 9 bits: (code length, symbol); length 0 means "longer code".
    fast: Vec<(u8, u8)>,
    maxcode: [i32; 18],
    valptr: [i32; 17],
    mincode: [i32; 17],
    symbols: Vec<u8>,
}

const FAST_BITS: u32 = 9;

impl Huffman {
    fn new(counts: &[u8; 16], symbols: &[u8]) -> Option<Self> {
        let mut h = Huffman {
            fast: vec![(0, 0); 1 << FAST_BITS],
            maxcode: [-1; 18],
            valptr: [0; 17],
            mincode: [0; 17],
            symbols: symbols.to_vec(),
        };
        let mut code: i32 = 0;
        let mut k: usize = 0;
        for len in 1..=16usize {
            let n = usize::from(counts[len - 1]);
            h.valptr[len] = k as i32;
            h.mincode[len] = code;
            for _ in 0..n {
                // A code that overflows its length means the table is invalid.
                if code >= (1 << len) {
                    return None;
                }
                if len as u32 <= FAST_BITS {
                    let shift = FAST_BITS - len as u32;
                    let first = (code as usize) << shift;
                    for e in &mut h.fast[first..first + (1 << shift)] {
                        *e = (len as u8, *symbols.get(k)?);
                    }
                }
                code += 1;
                k += 1;
            }
            if n > 0 {
                h.maxcode[len] = code - 1;
            }
            code <<= 1;
        }
        h.maxcode[17] = i32::MAX;
        (k == symbols.len()).then_some(h)
    }

    fn decode(&self, bits: &mut Bits) -> Option<u8> {
        bits.fill();
        let (len, sym) = self.fast[bits.peek(FAST_BITS) as usize];
        if len > 0 {
            bits.consume(u32::from(len));
            return Some(sym);
        }
        let mut code = bits.peek(FAST_BITS) as i32;
        bits.consume(FAST_BITS);
        for len in (FAST_BITS as usize + 1)..=16 {
            code = (code << 1) | bits.take(1) as i32;
            if code <= self.maxcode[len] {
                let i = self.valptr[len] + code - self.mincode[len];
                return self.symbols.get(usize::try_from(i).ok()?).copied();
            }
        }
        None
    }
}

/// MSB-first reader of entropy-coded data: removes the 0x00 after each stuffed 0xFF and stops
/// at a marker, feeding zeros after it and counting them, so that reading past the data is
/// noticed (`overrun`) instead of silently decoding zeros as libjpeg does with a warning.
struct Bits<'a> {
    b: &'a [u8],
    pos: usize,
    acc: u64,
    n: u32,
    padding: u32,
}

impl<'a> Bits<'a> {
    fn new(b: &'a [u8], pos: usize) -> Self {
        Bits {
            b,
            pos,
            acc: 0,
            n: 0,
            padding: 0,
        }
    }

    fn fill(&mut self) {
        while self.n <= 56 {
            let byte = match (self.b.get(self.pos), self.b.get(self.pos + 1)) {
                (Some(0xFF), Some(0x00)) => {
                    self.pos += 2;
                    0xFF
                }
                (Some(0xFF), _) | (None, _) => {
                    self.padding += 8;
                    0
                }
                (Some(&v), _) => {
                    self.pos += 1;
                    v
                }
            };
            self.acc |= u64::from(byte) << (56 - self.n);
            self.n += 8;
        }
    }

    fn peek(&self, k: u32) -> u64 {
        self.acc >> (64 - k)
    }

    fn consume(&mut self, k: u32) {
        self.acc <<= k;
        self.n -= k;
    }

    fn take(&mut self, k: u32) -> u32 {
        if k == 0 {
            return 0;
        }
        self.fill();
        let v = self.peek(k) as u32;
        self.consume(k);
        v
    }

    /// Whether bits beyond the real data (the zeros fed after a marker) have been used.
    fn overrun(&self) -> bool {
        self.n < self.padding
    }

    /// At a restart marker: drop the padding bits of the last byte and step over `RSTn`.
    /// The reader stops at markers and always holds at least 7 bytes, so the marker has
    /// been reached unless a whole byte of real data is left over, which means damage.
    fn restart(&mut self) -> Option<()> {
        if self.overrun() || self.n - self.padding >= 8 {
            return None;
        }
        let mut p = self.pos;
        while self.b.get(p) == Some(&0xFF) && self.b.get(p + 1) == Some(&0xFF) {
            p += 1;
        }
        match (self.b.get(p), self.b.get(p + 1)) {
            (Some(0xFF), Some(0xD0..=0xD7)) => {
                *self = Bits::new(self.b, p + 2);
                Some(())
            }
            _ => None,
        }
    }
}

struct Component {
    id: u8,
    h: usize,
    v: usize,
    tq: usize,
    /// Blocks across and down, padded to whole MCUs (interleaved scans fill the padding).
    bw: usize,
    bh: usize,
    /// Blocks that hold image data, in a non-interleaved scan's raster order.
    used_w: usize,
    used_h: usize,
    dc: Vec<i32>,
    /// The quantisation steps at zigzag 0-4, latched at the component's first scan as libjpeg
    /// does.
    q: Option<[i32; 5]>,
    /// The lowest bit position of DC decoded so far (0 = complete).
    al: Option<u8>,
    /// At 1/4 scale: each block's coefficients at zigzag 1, 2 and 4, that is (0,1), (1,0) and
    /// (1,1), the ones a 2x2 output needs most (see `idct_2x2`).
    ac: Vec<[i32; 3]>,
    /// AC coefficients (bit k = zigzag k) some first-pass scan has delivered.
    covered: u64,
}

/// The output scale: 1/8 needs the DC coefficients only, 1/4 also the AC ones in `NEEDED_AC`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    Eighth,
    Quarter,
}

/// Zigzag 1, 2 and 4.
const NEEDED_AC: u64 = 0b1_0110;

/// Decodes `b` at 1/8 scale from its DC coefficients alone, or at 1/4 from those and the first
/// AC coefficients, or returns `None` when the file is not a progressive JPEG this decoder
/// takes (see the module documentation).
pub fn decode(b: &[u8], scale: Scale) -> Option<Pixels> {
    if b.get(0..2)? != [0xFF, 0xD8] {
        return None;
    }
    let quarter = scale == Scale::Quarter;
    let mut dc_tables: [Option<Huffman>; 4] = [None, None, None, None];
    let mut ac_tables: [Option<Huffman>; 4] = [None, None, None, None];
    let mut quant: [Option<[i32; 5]>; 4] = [None; 4];
    let mut restart_interval = 0usize;
    let mut frame: Option<(usize, usize, Vec<Component>)> = None;
    let mut adobe_transform: Option<u8> = None;
    let mut scans = 0u32;
    let mut pos = 2usize;
    loop {
        if b.get(pos) != Some(&0xFF) {
            return None;
        }
        while b.get(pos) == Some(&0xFF) {
            pos += 1;
        }
        let m = *b.get(pos)?;
        pos += 1;
        match m {
            0xD0..=0xD7 | 0x01 => continue,
            0xD8 | 0xD9 => return None,
            _ => {}
        }
        let len = usize::from(u16::from_be_bytes([*b.get(pos)?, *b.get(pos + 1)?]));
        let body = b.get(pos + 2..pos.checked_add(len)?)?;
        if len < 2 {
            return None;
        }
        pos += len;
        match m {
            0xC2 => frame = Some(parse_frame(body, frame.is_some(), quarter)?),
            // Any other frame type: baseline and extended sequential are fast already in
            // libjpeg-turbo, and arithmetic coding and lossless are not handled here.
            0xC0 | 0xC1 | 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => return None,
            0xC4 => parse_dht(body, &mut dc_tables, &mut ac_tables)?,
            0xDB => parse_dqt(body, &mut quant)?,
            0xDD => {
                restart_interval = usize::from(u16::from_be_bytes([*body.first()?, *body.get(1)?]))
            }
            0xEE if body.starts_with(b"Adobe") => adobe_transform = body.get(11).copied(),
            0xDA => {
                scans += 1;
                if scans > SCAN_LIMIT {
                    return None;
                }
                let (w, h, comps) = frame.as_mut()?;
                let scan = parse_scan(body, comps)?;
                if scan.ss == 0 {
                    pos = dc_scan(
                        b,
                        pos,
                        &scan,
                        comps,
                        (*w, *h),
                        &dc_tables,
                        &quant,
                        restart_interval,
                    )?;
                } else if quarter && scan.ah == 0 && scan.ss <= 4 {
                    pos = ac_scan(b, pos, &scan, comps, &ac_tables, restart_interval)?;
                } else {
                    // AC beyond zigzag 4, and every AC refinement: the coefficients used are
                    // then short of their last bits (see `to_pixels`).
                    pos = skip_entropy(b, pos)?;
                }
                let done = |c: &Component| {
                    c.al == Some(0) && (!quarter || c.covered & NEEDED_AC == NEEDED_AC)
                };
                if comps.iter().all(done) {
                    break;
                }
            }
            _ => {}
        }
    }
    let (w, h, comps) = frame?;
    to_pixels(w, h, &comps, adobe_transform, scale)
}

fn parse_frame(body: &[u8], seen: bool, quarter: bool) -> Option<(usize, usize, Vec<Component>)> {
    if seen || *body.first()? != 8 {
        return None; // a second frame, or 12-bit samples
    }
    let h = usize::from(u16::from_be_bytes([*body.get(1)?, *body.get(2)?]));
    let w = usize::from(u16::from_be_bytes([*body.get(3)?, *body.get(4)?]));
    let n = usize::from(*body.get(5)?);
    // Height 0 means "defined by a DNL marker later": not handled.
    if w == 0 || h == 0 || !(n == 1 || n == 3) {
        return None;
    }
    let mut comps = Vec::with_capacity(n);
    for i in 0..n {
        let c = body.get(6 + 3 * i..9 + 3 * i)?;
        let (hs, vs) = (usize::from(c[1] >> 4), usize::from(c[1] & 15));
        if !(1..=4).contains(&hs) || !(1..=4).contains(&vs) || c[2] > 3 {
            return None;
        }
        comps.push(Component {
            id: c[0],
            h: hs,
            v: vs,
            tq: usize::from(c[2]),
            bw: 0,
            bh: 0,
            used_w: 0,
            used_h: 0,
            dc: Vec::new(),
            q: None,
            al: None,
            ac: Vec::new(),
            covered: 0,
        });
    }
    let hmax = comps.iter().map(|c| c.h).max()?;
    let vmax = comps.iter().map(|c| c.v).max()?;
    let mcus_x = w.div_ceil(8 * hmax);
    let mcus_y = h.div_ceil(8 * vmax);
    for c in &mut comps {
        // libjpeg upsamples by whole factors only.
        if hmax % c.h != 0 || vmax % c.v != 0 {
            return None;
        }
        c.bw = mcus_x * c.h;
        c.bh = mcus_y * c.v;
        c.used_w = (w * c.h).div_ceil(hmax).div_ceil(8);
        c.used_h = (h * c.v).div_ceil(vmax).div_ceil(8);
        c.dc = vec![0; c.bw * c.bh];
        if quarter {
            c.ac = vec![[0; 3]; c.bw * c.bh];
        }
    }
    Some((w, h, comps))
}

fn parse_dht(
    mut body: &[u8],
    dc_tables: &mut [Option<Huffman>; 4],
    ac_tables: &mut [Option<Huffman>; 4],
) -> Option<()> {
    while !body.is_empty() {
        let tc_th = *body.first()?;
        let counts: [u8; 16] = body.get(1..17)?.try_into().ok()?;
        let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
        let symbols = body.get(17..17 + total)?;
        let (class, slot) = (tc_th >> 4, usize::from(tc_th & 15));
        if slot > 3 || class > 1 {
            return None;
        }
        let table = Some(Huffman::new(&counts, symbols)?);
        if class == 0 {
            dc_tables[slot] = table;
        } else {
            ac_tables[slot] = table;
        }
        body = &body[17 + total..];
    }
    Some(())
}

fn parse_dqt(mut body: &[u8], quant: &mut [Option<[i32; 5]>; 4]) -> Option<()> {
    while !body.is_empty() {
        let pq_tq = *body.first()?;
        let (precision, slot) = (pq_tq >> 4, usize::from(pq_tq & 15));
        if slot > 3 {
            return None;
        }
        let mut q = [0i32; 5];
        let size = match precision {
            0 => {
                for (k, v) in q.iter_mut().enumerate() {
                    *v = i32::from(*body.get(1 + k)?);
                }
                65
            }
            1 => {
                for (k, v) in q.iter_mut().enumerate() {
                    *v = i32::from(u16::from_be_bytes([
                        *body.get(1 + 2 * k)?,
                        *body.get(2 + 2 * k)?,
                    ]));
                }
                129
            }
            _ => return None,
        };
        quant[slot] = Some(q);
        body = body.get(size..)?;
    }
    Some(())
}

struct Scan {
    /// Indices into the frame's components, in scan order, with their DC table slot.
    comps: Vec<(usize, usize)>,
    /// The AC table slot of the first (in an AC scan, the only) component.
    ta: usize,
    ss: u8,
    se: u8,
    ah: u8,
    al: u8,
}

fn parse_scan(body: &[u8], comps: &[Component]) -> Option<Scan> {
    let n = usize::from(*body.first()?);
    if n == 0 || n > 4 {
        return None;
    }
    let mut sc = Vec::with_capacity(n);
    let ta = usize::from(*body.get(2)? & 15);
    for i in 0..n {
        let id = *body.get(1 + 2 * i)?;
        let td = usize::from(*body.get(2 + 2 * i)? >> 4);
        let idx = comps.iter().position(|c| c.id == id)?;
        sc.push((idx, td));
    }
    let tail = body.get(1 + 2 * n..4 + 2 * n)?;
    let (ss, se, ah, al) = (tail[0], tail[1], tail[2] >> 4, tail[2] & 15);
    // A DC scan holds DC only; AC scans (ss > 0) hold one component each.
    if (ss == 0 && se != 0) || (ss > 0 && (n != 1 || se > 63 || se < ss)) || al > 13 {
        return None;
    }
    Some(Scan {
        comps: sc,
        ta,
        ss,
        se,
        ah,
        al,
    })
}

/// Steps over a scan's entropy-coded data to the next marker that is not a restart.
fn skip_entropy(b: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        pos += memchr::memchr(0xFF, b.get(pos..)?)?;
        match b.get(pos + 1)? {
            0x00 | 0xD0..=0xD7 | 0xFF => pos += 1,
            _ => return Some(pos),
        }
    }
}

/// Decodes one DC scan (first pass or refinement) into the components' DC arrays; returns
/// the position after its entropy-coded data.
#[allow(clippy::too_many_arguments)]
fn dc_scan(
    b: &[u8],
    pos: usize,
    scan: &Scan,
    comps: &mut [Component],
    (w, h): (usize, usize),
    tables: &[Option<Huffman>; 4],
    quant: &[Option<[i32; 5]>; 4],
    restart_interval: usize,
) -> Option<usize> {
    for &(ci, td) in &scan.comps {
        let c = &mut comps[ci];
        // The first pass must come first, and each refinement continue where the last ended.
        match (scan.ah, c.al) {
            (0, None) => {
                if td > 3 || tables[td].is_none() {
                    return None;
                }
                c.q = Some(quant[c.tq]?);
            }
            // `ah > 0` first: a second first pass (ah 0 over a decoded component) is refused,
            // and `ah - 1` must not be reached with ah 0 (found by the fuzzer).
            (ah, Some(al)) if ah > 0 && ah == al && scan.al == ah - 1 => {}
            _ => return None,
        }
    }
    let mut bits = Bits::new(b, pos);
    let mut pred = [0i32; 4];
    let refine = scan.ah > 0;
    let decode_block = |c: &mut Component, td: usize, slot: usize, p: &mut i32, bits: &mut Bits| {
        if refine {
            if bits.take(1) == 1 {
                c.dc[slot] |= 1 << scan.al;
            }
            return Some(());
        }
        let s = u32::from(tables[td].as_ref()?.decode(bits)?);
        if s > 11 {
            return None;
        }
        *p = p.checked_add(extend(bits.take(s), s))?;
        c.dc[slot] = *p << scan.al;
        Some(())
    };
    let hmax = comps.iter().map(|c| c.h).max()?;
    let vmax = comps.iter().map(|c| c.v).max()?;
    let (units_x, units_y) = if scan.comps.len() == 1 {
        let c = &comps[scan.comps[0].0];
        (c.used_w, c.used_h)
    } else {
        (w.div_ceil(8 * hmax), h.div_ceil(8 * vmax))
    };
    let total = units_x * units_y;
    for unit in 0..total {
        if restart_interval > 0 && unit > 0 && unit % restart_interval == 0 {
            bits.restart()?;
            pred = [0; 4];
        }
        let (ux, uy) = (unit % units_x, unit / units_x);
        for (k, &(ci, td)) in scan.comps.iter().enumerate() {
            let c = &mut comps[ci];
            if scan.comps.len() == 1 {
                let slot = uy * c.bw + ux;
                decode_block(c, td, slot, &mut pred[k], &mut bits)?;
            } else {
                for by in 0..c.v {
                    for bx in 0..c.h {
                        let slot = (uy * c.v + by) * c.bw + ux * c.h + bx;
                        decode_block(c, td, slot, &mut pred[k], &mut bits)?;
                    }
                }
            }
        }
    }
    if bits.overrun() {
        return None;
    }
    for &(ci, _) in &scan.comps {
        comps[ci].al = Some(scan.al);
    }
    // The reader never steps past a marker: the scan ends at the next one from there.
    skip_entropy(b, bits.pos)
}

/// The signed value of `s` received bits (JPEG's EXTEND procedure, F.2.2.1).
fn extend(v: u32, s: u32) -> i32 {
    let v = v as i32;
    if s > 0 && v < 1 << (s - 1) {
        v - (1 << s) + 1
    } else {
        v
    }
}

/// Decodes one AC first-pass scan (spectral selection, no refinement) of one component,
/// keeping the coefficients at zigzag 1, 2 and 4; returns the position after its data.
fn ac_scan(
    b: &[u8],
    pos: usize,
    scan: &Scan,
    comps: &mut [Component],
    tables: &[Option<Huffman>; 4],
    restart_interval: usize,
) -> Option<usize> {
    let &(ci, _) = scan.comps.first()?;
    let c = &mut comps[ci];
    // AC before the component's first DC scan is out of order (libjpeg only warns): leave
    // such a file to libjpeg-turbo.
    c.al?;
    let table = tables.get(scan.ta)?.as_ref()?;
    let (ss, se, al) = (usize::from(scan.ss), usize::from(scan.se), scan.al);
    let mut bits = Bits::new(b, pos);
    // Blocks left in the current run of blocks with no coefficient in this band (EOBRUN).
    let mut eob_run = 0u32;
    for unit in 0..c.used_w * c.used_h {
        if restart_interval > 0 && unit > 0 && unit % restart_interval == 0 {
            bits.restart()?;
            eob_run = 0;
        }
        if eob_run > 0 {
            eob_run -= 1;
            continue;
        }
        let slot = (unit / c.used_w) * c.bw + unit % c.used_w;
        let mut k = ss;
        while k <= se {
            let rs = table.decode(&mut bits)?;
            let (r, size) = (usize::from(rs >> 4), u32::from(rs & 15));
            if size > 0 {
                k += r;
                if k > se {
                    return None;
                }
                let v = extend(bits.take(size), size).checked_mul(1 << al)?;
                match k {
                    1 => c.ac[slot][0] = v,
                    2 => c.ac[slot][1] = v,
                    4 => c.ac[slot][2] = v,
                    _ => {}
                }
                k += 1;
            } else if r == 15 {
                k += 16;
            } else {
                // EOBr: this block and (2^r - 1 + r more bits) blocks after it end here.
                eob_run = (1u32 << r) - 1 + bits.take(r as u32);
                break;
            }
        }
    }
    if bits.overrun() {
        return None;
    }
    for k in ss..=se {
        c.covered |= 1 << k;
    }
    skip_entropy(b, bits.pos)
}

/// libjpeg-turbo's 2x2 inverse DCT (`jpeg_idct_2x2`, jidctred.c), fed only the coefficients
/// read: (0,0), (0,1), (1,0) and (1,1). libjpeg-turbo also adds rows and columns 3, 5 and 7,
/// which the first AC scans do not carry and which weigh less (their factors are 0.35 and
/// less of the first's) on coefficients that are, in photos, much smaller; and without the
/// AC refinement scans the coefficients read lack their last `Al` bits. So the result is
/// close to libjpeg-turbo's 1/4 decode, not equal (the tests bound the difference).
fn idct_2x2(dc: i32, ac: [i32; 3], q: [i32; 5]) -> [i32; 4] {
    const CONST_BITS: u32 = 13;
    const PASS1_BITS: u32 = 2;
    const FIX_3_624509785: i64 = 29692;
    let descale = |x: i64, n: u32| (x + (1 << (n - 1))) >> n;
    // Natural order: (0,1) is zigzag 1 with step q[1], (1,0) zigzag 2 (q[2]), (1,1) zigzag 4.
    let c00 = i64::from(dc) * i64::from(q[0]);
    let c01 = i64::from(ac[0]) * i64::from(q[1]);
    let c10 = i64::from(ac[1]) * i64::from(q[2]);
    let c11 = i64::from(ac[2]) * i64::from(q[4]);
    // Pass 1, columns 0 and 1: rows 0 and 1 of the work array.
    let column = |top: i64, next: i64| {
        let even = top << (CONST_BITS + 2);
        let odd = next * FIX_3_624509785;
        let n = CONST_BITS - PASS1_BITS + 2;
        (descale(even + odd, n), descale(even - odd, n))
    };
    let (w00, w10) = column(c00, c10);
    let (w01, w11) = column(c01, c11);
    // Pass 2, rows 0 and 1.
    let row = |left: i64, right: i64| {
        let even = left << (CONST_BITS + 2);
        let odd = right * FIX_3_624509785;
        let n = CONST_BITS + PASS1_BITS + 3 + 2;
        (descale(even + odd, n), descale(even - odd, n))
    };
    let (o00, o01) = row(w00, w01);
    let (o10, o11) = row(w10, w11);
    [o00, o01, o10, o11].map(|v| v.clamp(-1 << 20, 1 << 20) as i32)
}

/// Block coefficients to pixels, as libjpeg-turbo's 1x1 (or, near enough, 2x2) inverse DCT
/// and colour conversion do.
fn to_pixels(
    w: usize,
    h: usize,
    comps: &[Component],
    adobe: Option<u8>,
    scale: Scale,
) -> Option<Pixels> {
    let n = if scale == Scale::Quarter { 2 } else { 1 };
    let (ow, oh) = (w.div_ceil(8 / n), h.div_ceil(8 / n));
    let hmax = comps.iter().map(|c| c.h).max()?;
    let vmax = comps.iter().map(|c| c.v).max()?;
    let planes: Vec<Vec<u8>> = comps
        .iter()
        .map(|c| {
            let q = c.q.unwrap_or([1; 5]);
            let (sw, sh) = (c.used_w * n, c.used_h * n);
            let mut samples = vec![0u8; sw * sh];
            for by in 0..c.used_h {
                for bx in 0..c.used_w {
                    let slot = by * c.bw + bx;
                    let dc = c.dc[slot];
                    if n == 1 {
                        // DESCALE(dc * q, 3) + CENTERJSAMPLE, clamped.
                        let v = (dc.saturating_mul(q[0]).saturating_add(4) >> 3) + 128;
                        samples[by * sw + bx] = v.clamp(0, 255) as u8;
                    } else {
                        let px = idct_2x2(dc, c.ac[slot], q);
                        for (i, v) in px.into_iter().enumerate() {
                            let (y, x) = (2 * by + i / 2, 2 * bx + i % 2);
                            samples[y * sw + x] = (v + 128).clamp(0, 255) as u8;
                        }
                    }
                }
            }
            upsample(&samples, (sw, sh), (ow, oh), (hmax / c.h, vmax / c.v))
        })
        .collect();
    if planes.len() == 1 {
        return Pixels::new(
            ow as u32,
            oh as u32,
            Layout::Gray,
            planes.into_iter().next()?,
        )
        .ok();
    }
    // Three components are YCbCr unless an Adobe marker says "no transform", or, without
    // one, the components are named R, G, B (libjpeg's rules).
    let ids: Vec<u8> = comps.iter().map(|c| c.id).collect();
    let ycc = match adobe {
        Some(t) => t != 0,
        None => ids != b"RGB",
    };
    let mut out = Vec::with_capacity(ow * oh * 3);
    let [py, pcb, pcr] = [&planes[0], &planes[1], &planes[2]];
    for ((&y, &cb), &cr) in py.iter().zip(pcb).zip(pcr) {
        if ycc {
            out.extend_from_slice(&ycc_to_rgb(y, cb, cr));
        } else {
            out.extend_from_slice(&[y, cb, cr]);
        }
    }
    Pixels::new(ow as u32, oh as u32, Layout::Rgb, out).ok()
}

/// Subsampled chroma up to the output size. Twice is a triangle filter (each output sample
/// 3/4 of its nearest source sample and 1/4 of the next, libjpeg's "fancy" upsampling),
/// extended linearly past the first and last samples: at this scale libjpeg-turbo decodes
/// such chroma at 2x2 from its first AC coefficients, which a DC-only decode does not have,
/// and a gradient through the means comes closest to that without them. Other factors
/// repeat samples, as libjpeg does.
fn upsample(
    src: &[u8],
    (sw, sh): (usize, usize),
    (ow, oh): (usize, usize),
    (fx, fy): (usize, usize),
) -> Vec<u8> {
    // Per output coordinate: two source indices and their weights, in quarters.
    let taps = |n_out: usize, n_src: usize, f: usize| -> Vec<(usize, usize, i32, i32)> {
        (0..n_out)
            .map(|o| {
                let i = (o / f).min(n_src - 1);
                if f != 2 || n_src < 2 {
                    return (i, i, 4, 0);
                }
                match (o % 2 == 0, i) {
                    (true, 0) => (0, 1, 5, -1),
                    (true, _) => (i, i - 1, 3, 1),
                    (false, _) if i + 1 == n_src => (i, i - 1, 5, -1),
                    (false, _) => (i, i + 1, 3, 1),
                }
            })
            .collect()
    };
    let xs = taps(ow, sw, fx);
    let ys = taps(oh, sh, fy);
    let mut out = Vec::with_capacity(ow * oh);
    for &(y0, y1, a, b) in &ys {
        let (r0, r1) = (&src[y0 * sw..(y0 + 1) * sw], &src[y1 * sw..(y1 + 1) * sw]);
        for &(x0, x1, c, d) in &xs {
            let col = |r: &[u8]| c * i32::from(r[x0]) + d * i32::from(r[x1]);
            let v = a * col(r0) + b * col(r1);
            out.push(((v + 8) >> 4).clamp(0, 255) as u8);
        }
    }
    out
}

/// libjpeg's fixed-point conversion (jdcolor.c): 16 fractional bits, rounded.
fn ycc_to_rgb(y: u8, cb: u8, cr: u8) -> [u8; 3] {
    const ONE_HALF: i32 = 1 << 15;
    let fix = |x: f64| (x * 65536.0 + 0.5) as i32;
    let (y, cb, cr) = (i32::from(y), i32::from(cb) - 128, i32::from(cr) - 128);
    let r = y + ((fix(1.402) * cr + ONE_HALF) >> 16);
    let g = y + ((-fix(0.344_14) * cb - fix(0.714_14) * cr + ONE_HALF) >> 16);
    let b = y + ((fix(1.772) * cb + ONE_HALF) >> 16);
    [r, g, b].map(|v| v.clamp(0, 255) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A photo-like test image: smooth colour (as photos' chroma is) under sharp, fine
    /// texture in brightness.
    fn photo(w: usize, h: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                let t = ((x * 7 + y * 3) % 61) as i32 - 30;
                let (dx, dy) = (x as f64 / w as f64 - 0.6, y as f64 / h as f64 - 0.4);
                let rgb = [
                    40.0 + 180.0 * x as f64 / w as f64,
                    60.0 + 150.0 * y as f64 / h as f64,
                    220.0 - 300.0 * (dx * dx + dy * dy),
                ];
                v.extend(rgb.map(|c| (c as i32 + t).clamp(0, 255) as u8));
            }
        }
        v
    }

    fn turbo(
        w: usize,
        h: usize,
        subsamp: turbojpeg::Subsamp,
        progressive: bool,
        arith: bool,
    ) -> Vec<u8> {
        let px = photo(w, h);
        let mut c = turbojpeg::Compressor::new().expect("compressor");
        c.set_quality(90).expect("quality");
        c.set_subsamp(subsamp).expect("subsamp");
        c.set_progressive(progressive).expect("progressive");
        c.set_arithmetic(arith).expect("arithmetic");
        let (pixels, format) = if subsamp == turbojpeg::Subsamp::Gray {
            let g: Vec<u8> = px.chunks_exact(3).map(|p| p[1]).collect();
            (g, turbojpeg::PixelFormat::GRAY)
        } else {
            (px, turbojpeg::PixelFormat::RGB)
        };
        let size = format.size();
        c.compress_to_vec(turbojpeg::Image {
            pixels: pixels.as_slice(),
            width: w,
            pitch: w * size,
            height: h,
            format,
        })
        .expect("compress")
    }

    /// libjpeg-turbo's own decode at 1/8, the reference.
    fn eighth(bytes: &[u8], gray: bool) -> (usize, usize, Vec<u8>) {
        scaled(bytes, gray, turbojpeg::ScalingFactor::ONE_EIGHTH)
    }

    /// libjpeg-turbo's own decode at `factor`.
    fn scaled(
        bytes: &[u8],
        gray: bool,
        factor: turbojpeg::ScalingFactor,
    ) -> (usize, usize, Vec<u8>) {
        let mut d = turbojpeg::Decompressor::new().expect("decompressor");
        let header = d.read_header(bytes).expect("header");
        d.set_scaling_factor(factor).expect("scale");
        let s = header.scaled(factor);
        let format = if gray {
            turbojpeg::PixelFormat::GRAY
        } else {
            turbojpeg::PixelFormat::RGB
        };
        let mut buf = vec![0u8; s.width * s.height * format.size()];
        d.decompress(
            bytes,
            turbojpeg::Image {
                pixels: buf.as_mut_slice(),
                width: s.width,
                pitch: s.width * format.size(),
                height: s.height,
                format,
            },
        )
        .expect("decompress");
        (s.width, s.height, buf)
    }

    fn assert_matches_libjpeg(bytes: &[u8], gray: bool, full_chroma: bool, what: &str) {
        let ours = decode(bytes, Scale::Eighth)
            .unwrap_or_else(|| panic!("{what}: not taken by the DC decoder"));
        let (w, h, reference) = eighth(bytes, gray);
        assert_eq!(
            (ours.width as usize, ours.height as usize),
            (w, h),
            "{what}"
        );
        assert_eq!(
            ours.layout,
            if gray { Layout::Gray } else { Layout::Rgb },
            "{what}"
        );
        let diffs: Vec<u8> = ours
            .data
            .iter()
            .zip(&reference)
            .map(|(a, b)| a.abs_diff(*b))
            .collect();
        let max = diffs.iter().copied().max().unwrap_or(0);
        let mean = diffs.iter().map(|&d| f64::from(d)).sum::<f64>() / diffs.len() as f64;
        if full_chroma {
            // The same block means and the same arithmetic: equal within rounding.
            assert!(
                max <= 2,
                "{what}: differs from libjpeg-turbo's 1/8 decode by {max}"
            );
        } else {
            // Subsampled chroma: libjpeg-turbo decodes it at 2x2 from its first AC
            // coefficients here, we interpolate its means; so colour differs a little, most
            // at the image's edges, and brightness does not.
            assert!(mean < 1.0, "{what}: mean difference {mean:.2}, max {max}");
            let luma = |p: &[u8]| {
                0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2])
            };
            let worst = ours
                .data
                .chunks_exact(3)
                .zip(reference.chunks_exact(3))
                .map(|(a, b)| (luma(a) - luma(b)).abs())
                .fold(0.0, f64::max);
            assert!(
                worst < 4.0,
                "{what}: brightness differs by up to {worst:.1}"
            );
        }
    }

    #[test]
    fn libjpeg_progressions_match_libjpeg_turbo_at_one_eighth() {
        use turbojpeg::Subsamp::*;
        // libjpeg's standard progression: a DC scan at Al=1 and its refinement near the end.
        for (subsamp, gray) in [
            (Gray, true),
            (None, false),
            (Sub2x2, false),
            (Sub2x1, false),
            (Sub1x2, false),
        ] {
            for (w, h) in [(803, 611), (203, 101), (1203, 1001), (64, 64), (17, 9)] {
                let j = turbo(w, h, subsamp, true, false);
                let what = format!("{subsamp:?} {w}x{h}");
                if matches!(subsamp, Gray | None) {
                    assert_matches_libjpeg(&j, gray, true, &what);
                } else if w > 500 {
                    assert_matches_libjpeg(&j, gray, false, &what);
                } else {
                    // A few output pixels, most of them at an edge, where the chroma
                    // gradient is a guess: only the geometry is compared.
                    let p =
                        decode(&j, Scale::Eighth).unwrap_or_else(|| panic!("{what}: not taken"));
                    assert_eq!(
                        (p.width, p.height),
                        (w.div_ceil(8) as u32, h.div_ceil(8) as u32)
                    );
                }
            }
        }
    }

    #[test]
    fn other_encoders_progressions_and_restart_intervals() {
        // jpeg-encoder writes DC complete in its first scan, and can add restart markers.
        for restart in [0u16, 1, 7] {
            for sampling in [
                jpeg_encoder::SamplingFactor::R_4_2_0,
                jpeg_encoder::SamplingFactor::R_4_4_4,
            ] {
                let (w, h) = (333, 250);
                let mut out = Vec::new();
                let mut enc = jpeg_encoder::Encoder::new(&mut out, 85);
                enc.set_progressive(true);
                enc.set_restart_interval(restart);
                enc.set_sampling_factor(sampling);
                enc.encode(
                    &photo(w, h),
                    w as u16,
                    h as u16,
                    jpeg_encoder::ColorType::Rgb,
                )
                .expect("encode");
                let full = sampling == jpeg_encoder::SamplingFactor::R_4_4_4;
                assert_matches_libjpeg(
                    &out,
                    false,
                    full,
                    &format!("restart {restart} {sampling:?}"),
                );
            }
        }
    }

    #[test]
    fn what_it_does_not_take_goes_back_to_libjpeg_turbo() {
        // Baseline, arithmetic-coded progressive, not a JPEG.
        assert!(
            decode(
                &turbo(64, 48, turbojpeg::Subsamp::Sub2x2, false, false),
                Scale::Eighth
            )
            .is_none()
        );
        assert!(
            decode(
                &turbo(64, 48, turbojpeg::Subsamp::Sub2x2, true, true),
                Scale::Eighth
            )
            .is_none()
        );
        assert!(decode(b"\xFF\xD8\xFF", Scale::Eighth).is_none());
        assert!(decode(b"GIF89a", Scale::Quarter).is_none());
    }

    #[test]
    fn truncations_never_panic_and_need_the_whole_dc() {
        for scale in [Scale::Eighth, Scale::Quarter] {
            truncations(scale);
        }
    }

    fn truncations(scale: Scale) {
        let j = turbo(160, 120, turbojpeg::Subsamp::Sub2x2, true, false);
        let whole = decode(&j, scale).expect("whole file");
        let mut first_ok = None;
        for n in 0..j.len() {
            if let Some(p) = decode(&j[..n], scale) {
                first_ok.get_or_insert(n);
                // Once the DC is complete, the rest of the file cannot change the result.
                assert_eq!(p.data, whole.data, "cut at {n}");
            }
        }
        // The DC refinement scan comes late in libjpeg's progression: a file cut before it
        // is refused (and then by libjpeg-turbo too), one cut after it is not.
        let first_ok = first_ok.expect("some prefix decodes");
        assert!(
            first_ok > j.len() / 2 && first_ok < j.len(),
            "{first_ok} of {}",
            j.len()
        );
    }

    /// Mean and largest difference, over all samples and in brightness, of our 1/4 decode
    /// against libjpeg-turbo's.
    fn quarter_difference(bytes: &[u8], gray: bool) -> (f64, u8, f64) {
        let ours = decode(bytes, Scale::Quarter).expect("taken at 1/4");
        let (w, h, reference) = scaled(bytes, gray, turbojpeg::ScalingFactor::ONE_QUARTER);
        assert_eq!((ours.width as usize, ours.height as usize), (w, h));
        let diffs: Vec<u8> = ours
            .data
            .iter()
            .zip(&reference)
            .map(|(a, b)| a.abs_diff(*b))
            .collect();
        let max = diffs.iter().copied().max().unwrap_or(0);
        let mean = diffs.iter().map(|&d| f64::from(d)).sum::<f64>() / diffs.len() as f64;
        let px = if gray { 1 } else { 3 };
        let luma = |p: &[u8]| {
            if gray {
                f64::from(p[0])
            } else {
                0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2])
            }
        };
        let luma_mean = ours
            .data
            .chunks_exact(px)
            .zip(reference.chunks_exact(px))
            .map(|(a, b)| (luma(a) - luma(b)).abs())
            .sum::<f64>()
            / (w * h) as f64;
        (mean, max, luma_mean)
    }

    #[test]
    fn first_ac_scans_come_close_to_libjpeg_turbo_at_one_quarter() {
        use turbojpeg::Subsamp::*;
        for (subsamp, gray) in [
            (Gray, true),
            (None, false),
            (Sub2x2, false),
            (Sub2x1, false),
            (Sub1x2, false),
        ] {
            for (w, h) in [(803, 611), (1203, 1001), (64, 64), (17, 9)] {
                let j = turbo(w, h, subsamp, true, false);
                let (mean, max, luma) = quarter_difference(&j, gray);
                let what = format!("{subsamp:?} {w}x{h}: mean {mean:.2} max {max} luma {luma:.2}");
                // Measured on this test image, whose fine texture is the worst case for the
                // coefficients left out: brightness 1.6-1.7 off on average, everywhere.
                assert!(luma < 2.5, "{what}");
                // Chroma: tiny subsampled images are mostly edge, where libjpeg-turbo
                // replicates and we extrapolate (up to 11 on average at 17x9, 4:2:0); from
                // 64 px the mean is under 2.1 and no sample is off by more than 16.
                if w >= 64 {
                    assert!(mean < 2.5 && max <= 20, "{what}");
                }
            }
        }
    }

    #[test]
    fn hostile_tables_and_lengths() {
        let j = turbo(64, 48, turbojpeg::Subsamp::Sub2x2, true, false);
        // Every single-byte corruption: no panic, no out-of-bounds, whatever the answer.
        for i in 0..j.len().min(2000) {
            for v in [0x00, 0xFF, 0x7F] {
                let mut k = j.clone();
                k[i] = v;
                let _ = decode(&k, Scale::Eighth);
                let _ = decode(&k, Scale::Quarter);
            }
        }
        // A Huffman table whose counts overflow its code space is refused.
        let counts = [255u8; 16];
        assert!(Huffman::new(&counts, &vec![0u8; 16 * 255]).is_none());
    }
}
