//! What the structured fuzz targets read their choices with: the input front to back, and
//! past its end every read is zero (so a short input is still a whole case).

/// The fuzz input being read.
pub struct Reader<'a>(pub &'a [u8]);

#[allow(dead_code)]
impl Reader<'_> {
    /// The next byte.
    pub fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    /// True for one byte value in `one_in`.
    pub fn chance(&mut self, one_in: u8) -> bool {
        self.byte().is_multiple_of(one_in)
    }

    /// The next eight bytes, big-endian.
    pub fn u64(&mut self) -> u64 {
        (0..8).fold(0, |n, _| (n << 8) | u64::from(self.byte()))
    }

    /// One of `from`.
    pub fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[usize::from(self.byte()) % from.len()]
    }
}
