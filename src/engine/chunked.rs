//! A vector kept in fixed-size chunks. Growing allocates one more chunk and
//! never copies, so the room held beyond its length stays under two chunks
//! (a doubling `Vec` holds up to as much again as it uses). The engine keeps
//! its webinars here: at 10 000 webinars of about 300 bytes, doubling would
//! hold 6 384 empty slots, 2 MB.

use std::ops::{Index, IndexMut};

/// log2 of the elements per chunk.
const SHIFT: u32 = 6;
const CHUNK: usize = 1 << SHIFT;

pub struct Chunked<T> {
    /// Full chunks, then the one being filled, then at most one empty one
    /// (kept so that dropping and adding at a chunk boundary does not
    /// allocate each time).
    chunks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for Chunked<T> {
    fn default() -> Self {
        Chunked {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Chunked<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn push(&mut self, value: T) {
        let c = self.len >> SHIFT;
        if c == self.chunks.len() {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        self.chunks[c].push(value);
        self.len += 1;
    }

    /// Removes element `i`; the last one takes its place.
    ///
    /// # Panics
    /// If `i` is out of bounds.
    pub fn swap_remove(&mut self, i: usize) -> T {
        assert!(i < self.len, "swap_remove index {i} out of {}", self.len);
        let last_chunk = (self.len - 1) >> SHIFT;
        let last = self.chunks[last_chunk].pop().expect("the last chunk holds the last element");
        self.len -= 1;
        // Keep one empty chunk at most.
        if self.chunks.len() > last_chunk + 1 {
            self.chunks.pop();
        }
        if i == self.len {
            last
        } else {
            std::mem::replace(&mut self[i], last)
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.chunks.iter().flatten()
    }

    /// Bytes held for elements, used or not.
    pub fn capacity_bytes(&self) -> usize {
        self.chunks.iter().map(Vec::capacity).sum::<usize>() * std::mem::size_of::<T>()
    }
}

impl<T> Index<usize> for Chunked<T> {
    type Output = T;

    fn index(&self, i: usize) -> &T {
        &self.chunks[i >> SHIFT][i & (CHUNK - 1)]
    }
}

impl<T> IndexMut<usize> for Chunked<T> {
    fn index_mut(&mut self, i: usize) -> &mut T {
        &mut self.chunks[i >> SHIFT][i & (CHUNK - 1)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Push(u32),
        SwapRemove(usize),
        Set(usize, u32),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => any::<u32>().prop_map(Op::Push),
            2 => any::<usize>().prop_map(Op::SwapRemove),
            1 => (any::<usize>(), any::<u32>()).prop_map(|(i, v)| Op::Set(i, v)),
        ]
    }

    proptest! {
        /// Behaves exactly like `Vec` for the operations the engine uses,
        /// and never holds more than two chunks of room beyond its length.
        #[test]
        fn behaves_like_a_vec(ops in proptest::collection::vec(op(), 0..600)) {
            let mut c = Chunked::default();
            let mut v = Vec::new();
            for op in ops {
                match op {
                    Op::Push(x) => {
                        c.push(x);
                        v.push(x);
                    }
                    Op::SwapRemove(i) if !v.is_empty() => {
                        let i = i % v.len();
                        prop_assert_eq!(c.swap_remove(i), v.swap_remove(i));
                    }
                    Op::Set(i, x) if !v.is_empty() => {
                        let i = i % v.len();
                        c[i] = x;
                        v[i] = x;
                    }
                    _ => {}
                }
                prop_assert_eq!(c.len(), v.len());
                prop_assert_eq!(c.iter().copied().collect::<Vec<_>>(), v.clone());
                let room = c.capacity_bytes() / 4 - c.len();
                prop_assert!(room < 2 * CHUNK, "{} slots of room for {}", room, c.len());
            }
        }
    }

    #[test]
    #[should_panic(expected = "swap_remove index 0 out of 0")]
    fn swap_remove_out_of_bounds_panics() {
        Chunked::<u8>::default().swap_remove(0);
    }
}
