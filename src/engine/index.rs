//! A webinar's index from viewer fingerprint to viewer record: open
//! addressing with linear probing over 8-byte slots, each holding 32 bits of
//! the fingerprint beside the record's number.
//!
//! A lookup reads one slot (the probe rarely leaves its cache line) and then
//! the record, and the slot's address follows from the fingerprint alone,
//! so [`crate::engine::Engine::apply_all`] can fetch it records ahead. A
//! general hash table keeps its control bytes and its entries apart: two
//! dependent cache misses per lookup, which were most of the engine's time
//! at a million live viewers (`BENCHMARKS.md`).
//!
//! A slot's home position is taken from its tag, so growing and deleting
//! (backward shift, no tombstones) never read a record.

/// An empty slot. No real slot equals it: record numbers are below
/// `u32::MAX`.
const EMPTY: u64 = u64::MAX;

/// At most 7 of 8 slots are used.
const fn over_load(len: usize, slots: usize) -> bool {
    len * 8 > slots * 7
}

#[derive(Default)]
pub struct ViewerIndex {
    slots: Box<[u64]>,
    len: u32,
}

/// The 32 bits of a fingerprint's high word a slot keeps (the probe starts
/// at its low bits).
#[inline]
fn tag(hi: u64) -> u32 {
    (hi >> 32) as u32
}

#[inline]
fn slot(tag: u32, record: u32) -> u64 {
    (u64::from(tag) << 32) | u64::from(record)
}

impl ViewerIndex {
    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.len as usize
    }

    #[inline]
    fn mask(&self) -> usize {
        self.slots.len().wrapping_sub(1)
    }

    /// Where the probe for fingerprint `hi` starts: fetch it ahead of
    /// [`ViewerIndex::find`].
    #[inline]
    pub fn home(&self, hi: u64) -> Option<&u64> {
        self.slots.get(tag(hi) as usize & self.mask())
    }

    /// The record of the first slot whose tag matches `hi` and for which
    /// `is` holds.
    #[inline]
    pub fn find(&self, hi: u64, mut is: impl FnMut(u32) -> bool) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let (t, mask) = (tag(hi), self.mask());
        let mut pos = t as usize & mask;
        loop {
            let s = self.slots[pos];
            if s == EMPTY {
                return None;
            }
            if (s >> 32) as u32 == t && is(s as u32) {
                return Some(s as u32);
            }
            pos = (pos + 1) & mask;
        }
    }

    /// The record a tag match for `hi` points at, without checking it: a
    /// hint for fetching ahead (it may be another viewer's).
    #[inline]
    pub fn guess(&self, hi: u64) -> Option<u32> {
        let (t, mask) = (tag(hi), self.mask());
        let mut pos = t as usize & mask;
        for _ in 0..8 {
            let s = *self.slots.get(pos)?;
            if s == EMPTY {
                return None;
            }
            if (s >> 32) as u32 == t {
                return Some(s as u32);
            }
            pos = (pos + 1) & mask;
        }
        None
    }

    /// Adds `record` under fingerprint `hi` (not already present).
    pub fn insert(&mut self, hi: u64, record: u32) {
        debug_assert!(record != u32::MAX);
        if over_load(self.len as usize + 1, self.slots.len()) {
            self.grow();
        }
        self.place(slot(tag(hi), record));
        self.len += 1;
    }

    fn place(&mut self, s: u64) {
        let mask = self.mask();
        let mut pos = (s >> 32) as usize & mask;
        while self.slots[pos] != EMPTY {
            pos = (pos + 1) & mask;
        }
        self.slots[pos] = s;
    }

    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(8);
        let old = std::mem::replace(&mut self.slots, vec![EMPTY; size].into_boxed_slice());
        for s in old.iter().copied().filter(|&s| s != EMPTY) {
            self.place(s);
        }
    }

    /// Removes `record`, indexed under fingerprint `hi`; whether it was there.
    pub fn remove(&mut self, hi: u64, record: u32) -> bool {
        if self.slots.is_empty() {
            return false;
        }
        let mask = self.mask();
        let want = slot(tag(hi), record);
        let mut pos = tag(hi) as usize & mask;
        loop {
            match self.slots[pos] {
                EMPTY => return false,
                s if s == want => break,
                _ => pos = (pos + 1) & mask,
            }
        }
        // Backward shift: later slots of the run move into the hole unless
        // their home lies cyclically after it.
        let mut hole = pos;
        let mut next = (pos + 1) & mask;
        loop {
            let s = self.slots[next];
            if s == EMPTY {
                break;
            }
            let home = (s >> 32) as usize & mask;
            if (next.wrapping_sub(home) & mask) >= (next.wrapping_sub(hole) & mask) {
                self.slots[hole] = s;
                hole = next;
            }
            next = (next + 1) & mask;
        }
        self.slots[hole] = EMPTY;
        self.len -= 1;
        if self.len == 0 {
            self.slots = Box::default();
        }
        true
    }

    /// Bytes of slots held.
    #[cfg(test)]
    fn capacity_bytes(&self) -> usize {
        self.slots.len() * std::mem::size_of::<u64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The index answers like a map from fingerprint to record, through
        /// any mix of inserts and removals, colliding tags included.
        #[test]
        fn behaves_like_a_map(ops in prop::collection::vec((any::<bool>(), 0u64..64, 0u64..4), 1..600)) {
            let mut index = ViewerIndex::default();
            let mut model = std::collections::HashMap::<u64, u32>::new();
            let mut next_record = 0u32;
            for (insert, key, spread) in ops {
                // Few distinct homes and tags, to force long runs and wraps.
                let hi = (key << 32) | (key * spread);
                let found = index.find(hi, |r| model.get(&hi) == Some(&r));
                prop_assert_eq!(found, model.get(&hi).copied());
                if insert && !model.contains_key(&hi) {
                    index.insert(hi, next_record);
                    model.insert(hi, next_record);
                    next_record += 1;
                } else if let Some(r) = model.remove(&hi) {
                    prop_assert!(index.remove(hi, r));
                }
                prop_assert_eq!(index.len(), model.len());
                for (&h, &r) in &model {
                    prop_assert_eq!(index.find(h, |x| x == r), Some(r));
                }
            }
        }
    }

    #[test]
    fn an_emptied_index_holds_nothing() {
        let mut index = ViewerIndex::default();
        for r in 0..100 {
            index.insert(u64::from(r) << 40, r);
        }
        assert!(index.capacity_bytes() >= 100 * 8);
        for r in 0..100 {
            assert!(index.remove(u64::from(r) << 40, r));
        }
        assert!(index.is_empty());
        assert_eq!(index.capacity_bytes(), 0);
        assert!(!index.remove(7 << 40, 7));
    }
}
