//! A keyword automaton: Aho-Corasick with every transition precomputed
//! (a DFA over byte classes), reporting every occurrence of every keyword,
//! overlapping ones included. One table look-up per byte of text, in a loop
//! simple enough to stay fast in the size-optimised builds the verifier
//! ships with.

/// The automaton over a list of distinct, non-empty keywords.
#[derive(Debug)]
pub struct Keywords {
    /// Each byte's class: bytes that occur in no keyword share class 0.
    classes: [u8; 256],
    /// Transitions, `classes` wide per state: the next state's offset in
    /// this table, times two, plus one when that state ends a keyword.
    next: Vec<u32>,
    /// For each state (offset / stride), where its keywords start in
    /// `ends` (the state's keywords end at `starts[s]..starts[s + 1]`).
    starts: Vec<u32>,
    /// Keyword ids ending in each state, longest first.
    ends: Vec<u32>,
    /// Each keyword's length.
    lengths: Vec<usize>,
    /// The longest keyword's length.
    longest: usize,
    stride: usize,
}

impl Keywords {
    /// Builds the automaton; `keywords` must be distinct and non-empty,
    /// and use fewer than 255 distinct bytes between them.
    pub fn new(keywords: &[&[u8]]) -> Keywords {
        let mut classes = [0u8; 256];
        let mut stride = 1;
        for &b in keywords.iter().flat_map(|k| k.iter()) {
            if classes[usize::from(b)] == 0 {
                classes[usize::from(b)] = stride as u8;
                stride += 1;
            }
        }
        // The trie: `child[s * stride + c]` (0 = none; the root is state 0
        // and never a child), and the keyword each state spells, if any.
        let mut child: Vec<u32> = vec![0; stride];
        let mut own: Vec<Option<u32>> = vec![None];
        for (id, keyword) in keywords.iter().enumerate() {
            let mut state = 0;
            for &b in keyword.iter() {
                let slot = state * stride + usize::from(classes[usize::from(b)]);
                if child[slot] == 0 {
                    child[slot] = own.len() as u32;
                    own.push(None);
                    child.extend(std::iter::repeat_n(0, stride));
                }
                state = child[slot] as usize;
            }
            own[state] = Some(id as u32);
        }
        // Breadth first: each state's failure state is shallower, so its
        // transitions and keywords are complete when the state is reached.
        let states = own.len();
        let mut delta: Vec<u32> = vec![0; states * stride];
        let mut lists: Vec<Vec<u32>> = vec![Vec::new(); states];
        let mut fail = vec![0usize; states];
        let mut queue = std::collections::VecDeque::new();
        for c in 0..stride {
            let next = child[c];
            delta[c] = next;
            if next != 0 {
                queue.push_back(next as usize);
            }
        }
        while let Some(state) = queue.pop_front() {
            let mut list: Vec<u32> = own[state].into_iter().collect();
            list.extend_from_slice(&lists[fail[state]]);
            lists[state] = list;
            for c in 0..stride {
                let next = child[state * stride + c];
                let through_fail = delta[fail[state] * stride + c];
                if next == 0 {
                    delta[state * stride + c] = through_fail;
                } else {
                    delta[state * stride + c] = next;
                    fail[next as usize] = through_fail as usize;
                    queue.push_back(next as usize);
                }
            }
        }
        let next = delta
            .iter()
            .map(|&to| {
                let to = to as usize;
                ((to * stride) as u32) << 1 | u32::from(!lists[to].is_empty())
            })
            .collect();
        let mut starts = Vec::with_capacity(states + 1);
        let mut ends = Vec::new();
        for list in &lists {
            starts.push(ends.len() as u32);
            ends.extend_from_slice(list);
        }
        starts.push(ends.len() as u32);
        Keywords {
            classes,
            next,
            starts,
            ends,
            lengths: keywords.iter().map(|k| k.len()).collect(),
            longest: keywords.iter().map(|k| k.len()).max().unwrap_or(1),
            stride,
        }
    }

    /// Calls `found(keyword, start, end)` for every occurrence in `text`,
    /// in order of their ends, longest first among those ending together.
    pub fn each(&self, text: &[u8], mut found: impl FnMut(usize, usize, usize)) {
        // Each step waits for the one before: the text is cut into
        // `LANES` parts, walked side by side so their steps overlap. Each
        // part is entered `longest - 1` bytes early (reporting nothing
        // there), so it sees every keyword that ends inside it.
        const LANES: usize = 8;
        let part = text.len().div_ceil(LANES);
        let mut ends: [Vec<(usize, usize)>; LANES] = Default::default();
        let mut states = [0usize; LANES];
        if part < 2 * self.longest {
            self.walk(text, 0, text.len(), &mut 0, &mut ends[0]);
        } else {
            for (lane, state) in states.iter_mut().enumerate().skip(1) {
                let from = lane * part;
                for &b in &text[from + 1 - self.longest..from] {
                    *state = (self.step(*state, b) >> 1) as usize;
                }
            }
            // The last part is the shortest: all lanes step together over
            // its length, then the others finish alone.
            let together = text.len() - (LANES - 1) * part;
            for i in 0..together {
                for (lane, state) in states.iter_mut().enumerate() {
                    let at = lane * part + i;
                    let next = self.step(*state, text[at]);
                    *state = (next >> 1) as usize;
                    if next & 1 != 0 {
                        ends[lane].push((*state, at + 1));
                    }
                }
            }
            for lane in 0..LANES - 1 {
                let from = lane * part + together;
                self.walk(
                    text,
                    from,
                    (lane + 1) * part,
                    &mut states[lane],
                    &mut ends[lane],
                );
            }
        }
        for (state, end) in ends.into_iter().flatten() {
            let s = state / self.stride;
            for &id in &self.ends[self.starts[s] as usize..self.starts[s + 1] as usize] {
                let id = id as usize;
                found(id, end - self.lengths[id], end);
            }
        }
    }

    /// One transition (see `next`).
    fn step(&self, state: usize, b: u8) -> u32 {
        self.next[state + usize::from(self.classes[usize::from(b)])]
    }

    /// Walks `text[from..to]` from `state`, noting (state, end) wherever a
    /// keyword ends.
    fn walk(
        &self,
        text: &[u8],
        from: usize,
        to: usize,
        state: &mut usize,
        ends: &mut Vec<(usize, usize)>,
    ) {
        for (at, &b) in text.iter().enumerate().take(to).skip(from) {
            let next = self.step(*state, b);
            *state = (next >> 1) as usize;
            if next & 1 != 0 {
                ends.push((*state, at + 1));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_occurrence_is_found() {
        let keywords = Keywords::new(&[&b"he"[..], b"she", b"hers", b"his"]);
        let mut found = Vec::new();
        keywords.each(b"ushers his", |id, start, end| found.push((id, start, end)));
        assert_eq!(found, [(1, 1, 4), (0, 2, 4), (2, 2, 6), (3, 7, 10)]);
    }

    #[test]
    fn long_texts_are_walked_in_parts_without_losing_a_keyword() {
        let list = [&b"abc"[..], b"bcd", b"c"];
        let keywords = Keywords::new(&list);
        for len in [0, 1, 5, 23, 24, 25, 26, 27, 100, 101, 102, 103] {
            let text: Vec<u8> = (0..len).map(|i| b"abcd"[i % 4]).collect();
            let mut found = Vec::new();
            keywords.each(&text, |id, start, end| found.push((id, start, end)));
            let mut expected = Vec::new();
            for end in 1..=len {
                for (id, k) in list.iter().enumerate() {
                    if end >= k.len() && text[end - k.len()..end] == **k {
                        expected.push((id, end - k.len(), end));
                    }
                }
            }
            assert_eq!(found, expected, "{len}");
        }
    }
}
