//! Proves that every length declared in an embedded consumer-protocol message fits in the
//! bytes actually present, before `kafka-protocol` decodes it.
//!
//! It owns no decoding: it steps over the classic encoding without building values. It exists
//! because the crate reserves an array's memory from its count on the wire, so a garbage count
//! (2^31 - 1 topics) would make it ask for tens of gigabytes and abort the process; checking
//! `count × smallest entry ≤ bytes left` first keeps every allocation proportional to the input.

pub(super) fn check_subscription_lengths(body: &[u8], layout: i16) -> Result<(), String> {
    let mut walk = LengthWalk { rest: body };
    let topics = walk.count("topics", STRING_MIN)?;
    for _ in 0..topics {
        walk.string("topic name")?;
    }
    walk.bytes("user data")?;
    if layout >= 1 {
        walk.topic_partitions("owned partitions")?;
    }
    if layout >= 2 {
        walk.int32("generation id")?;
    }
    if layout >= 3 {
        walk.string("rack id")?;
    }
    Ok(())
}

pub(super) fn check_assignment_lengths(body: &[u8]) -> Result<(), String> {
    let mut walk = LengthWalk { rest: body };
    walk.topic_partitions("assigned partitions")?;
    walk.bytes("user data")?;
    Ok(())
}

/// Smallest encodings: an empty string (its i16 length) and a topic entry (empty name, empty
/// partition array).
const STRING_MIN: usize = 2;
const TOPIC_ENTRY_MIN: usize = STRING_MIN + 4;

/// Steps over the classic encoding without building values, only proving each declared length
/// fits in what remains. Errors are human-readable reasons for [`super::ProtocolError::Malformed`].
struct LengthWalk<'a> {
    rest: &'a [u8],
}

impl LengthWalk<'_> {
    fn skip(&mut self, len: usize, what: &str) -> Result<(), String> {
        match self.rest.get(len..) {
            Some(rest) => {
                self.rest = rest;
                Ok(())
            }
            None => Err(format!(
                "{what} needs {len} byte(s) but {} remain",
                self.rest.len()
            )),
        }
    }

    fn int16(&mut self, what: &str) -> Result<i16, String> {
        let (head, rest) = self
            .rest
            .split_first_chunk::<2>()
            .ok_or_else(|| format!("{what}: truncated before its i16 length"))?;
        self.rest = rest;
        Ok(i16::from_be_bytes(*head))
    }

    fn int32(&mut self, what: &str) -> Result<i32, String> {
        let (head, rest) = self
            .rest
            .split_first_chunk::<4>()
            .ok_or_else(|| format!("{what}: truncated before its i32"))?;
        self.rest = rest;
        Ok(i32::from_be_bytes(*head))
    }

    /// A nullable or non-nullable string; whether null is allowed is left to the decoder.
    fn string(&mut self, what: &str) -> Result<(), String> {
        match self.int16(what)? {
            -1 => Ok(()),
            len => {
                let len = usize::try_from(len)
                    .map_err(|_| format!("{what} has negative length {len}"))?;
                self.skip(len, what)
            }
        }
    }

    fn bytes(&mut self, what: &str) -> Result<(), String> {
        match self.int32(what)? {
            -1 => Ok(()),
            len => {
                let len = usize::try_from(len)
                    .map_err(|_| format!("{what} has negative length {len}"))?;
                self.skip(len, what)
            }
        }
    }

    /// An array count, refused when even the smallest possible entries could not fit.
    fn count(&mut self, what: &str, min_entry: usize) -> Result<usize, String> {
        let raw = self.int32(what)?;
        let count = usize::try_from(raw).map_err(|_| format!("{what} has negative count {raw}"))?;
        if count.saturating_mul(min_entry) > self.rest.len() {
            return Err(format!(
                "{what} claims {count} entries but only {} byte(s) remain",
                self.rest.len()
            ));
        }
        Ok(count)
    }

    fn topic_partitions(&mut self, what: &str) -> Result<(), String> {
        let topics = self.count(what, TOPIC_ENTRY_MIN)?;
        for _ in 0..topics {
            self.string("topic name")?;
            let partitions = self.count("partition list", 4)?;
            self.skip(partitions * 4, "partition list")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_larger_than_the_remaining_bytes_could_hold_is_refused() {
        // 3 topic entries need at least 3 × 2 bytes; only 4 follow.
        let body: &[u8] = &[0, 0, 0, 3, 0, 0, 0, 0];
        let reason = check_subscription_lengths(body, 0).expect_err("refused");
        assert!(reason.contains("claims 3 entries"), "{reason}");
    }

    #[test]
    fn negative_lengths_other_than_null_are_refused() {
        let body: &[u8] = &[0, 0, 0, 0, 0xff, 0xff, 0xff, 0xfe]; // user data length -2
        let reason = check_subscription_lengths(body, 0).expect_err("refused");
        assert!(reason.contains("negative length -2"), "{reason}");
    }

    #[test]
    fn null_strings_and_bytes_are_left_for_the_decoder_to_judge() {
        // v3: no topics, null user data, no owned partitions, generation 0, null rack.
        let body: &[u8] = &[
            0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
        ];
        assert_eq!(check_subscription_lengths(body, 3), Ok(()));
    }
}
