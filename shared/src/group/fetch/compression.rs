//! Decompression of the record section of a compressed record batch: every codec a Kafka
//! producer may use (gzip, snappy in both framings, lz4 frames, zstd), all in pure Rust so the
//! static musl builds need nothing else.
//!
//! It only turns bytes into bytes and must not know about records. The output is capped: a
//! batch whose records inflate past `limit` is refused rather than decompressed without bound,
//! because the compressed length on the wire says nothing about what it expands to.

use std::io::Read;

use bytes::Bytes;

/// The codec named by the low three bits of a batch's attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Codec {
    pub fn from_attributes(attributes: i16) -> Result<Self, DecompressError> {
        match attributes & 0x07 {
            0 => Ok(Self::None),
            1 => Ok(Self::Gzip),
            2 => Ok(Self::Snappy),
            3 => Ok(Self::Lz4),
            4 => Ok(Self::Zstd),
            other => Err(DecompressError::UnknownCodec(other)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecompressError {
    #[error("unknown compression codec {0} in the batch attributes")]
    UnknownCodec(i16),
    #[error("{codec:?} data is corrupt: {reason}")]
    Corrupt { codec: Codec, reason: String },
    #[error("{codec:?} data expands past {limit} bytes")]
    TooLarge { codec: Codec, limit: usize },
}

/// The xerial framing that Java's snappy stream writes: a magic header, then length-prefixed
/// raw snappy blocks. librdkafka writes one raw block, so both must be read.
const XERIAL_MAGIC: &[u8] = &[0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const XERIAL_HEADER_LEN: usize = 16;

/// Decompresses `input` with `codec`, producing at most `limit` bytes.
pub fn decompress(codec: Codec, input: &[u8], limit: usize) -> Result<Bytes, DecompressError> {
    let corrupt = |reason: String| DecompressError::Corrupt { codec, reason };
    match codec {
        Codec::None => Ok(Bytes::copy_from_slice(input)),
        Codec::Gzip => read_capped(codec, flate2::read::GzDecoder::new(input), limit),
        Codec::Lz4 => read_capped(codec, lz4_flex::frame::FrameDecoder::new(input), limit),
        Codec::Zstd => {
            let mut output = Vec::new();
            let mut rest = input;
            // A producer may write several frames back to back; each is read in turn.
            while !rest.is_empty() {
                let decoder = ruzstd::decoding::StreamingDecoder::new(&mut rest)
                    .map_err(|e| corrupt(e.to_string()))?;
                let budget = (limit - output.len()) as u64 + 1;
                decoder
                    .take(budget)
                    .read_to_end(&mut output)
                    .map_err(|e| corrupt(e.to_string()))?;
                if output.len() > limit {
                    return Err(DecompressError::TooLarge { codec, limit });
                }
            }
            Ok(Bytes::from(output))
        }
        Codec::Snappy if input.starts_with(XERIAL_MAGIC) => {
            let mut output = Vec::new();
            let mut rest = input
                .get(XERIAL_HEADER_LEN..)
                .ok_or_else(|| corrupt("xerial header cut short".into()))?;
            while !rest.is_empty() {
                let (length, after) = rest
                    .split_first_chunk::<4>()
                    .ok_or_else(|| corrupt("xerial block length cut short".into()))?;
                let length = u32::from_be_bytes(*length) as usize;
                let block = after
                    .get(..length)
                    .ok_or_else(|| corrupt("xerial block cut short".into()))?;
                snappy_block(block, limit - output.len(), &mut output)?;
                rest = &after[length..];
            }
            Ok(Bytes::from(output))
        }
        Codec::Snappy => {
            let mut output = Vec::new();
            snappy_block(input, limit, &mut output)?;
            Ok(Bytes::from(output))
        }
    }
}

/// Appends one raw snappy block, checking its declared length before allocating for it.
fn snappy_block(block: &[u8], room: usize, output: &mut Vec<u8>) -> Result<(), DecompressError> {
    let codec = Codec::Snappy;
    let length = snap::raw::decompress_len(block).map_err(|e| DecompressError::Corrupt {
        codec,
        reason: e.to_string(),
    })?;
    if length > room {
        return Err(DecompressError::TooLarge {
            codec,
            limit: output.len() + room,
        });
    }
    let start = output.len();
    output.resize(start + length, 0);
    snap::raw::Decoder::new()
        .decompress(block, &mut output[start..])
        .map_err(|e| DecompressError::Corrupt {
            codec,
            reason: e.to_string(),
        })?;
    Ok(())
}

fn read_capped(codec: Codec, reader: impl Read, limit: usize) -> Result<Bytes, DecompressError> {
    let mut output = Vec::new();
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut output)
        .map_err(|e| DecompressError::Corrupt {
            codec,
            reason: e.to_string(),
        })?;
    if output.len() > limit {
        return Err(DecompressError::TooLarge { codec, limit });
    }
    Ok(Bytes::from(output))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    const TEXT: &[u8] = b"order-events order-events order-events order-events 0123456789";

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(data).expect("gzip into a Vec");
        encoder.finish().expect("gzip into a Vec")
    }

    fn lz4(data: &[u8]) -> Vec<u8> {
        let mut encoder = lz4_flex::frame::FrameEncoder::new(Vec::new());
        encoder.write_all(data).expect("lz4 into a Vec");
        encoder.finish().expect("lz4 into a Vec")
    }

    #[test]
    fn every_codec_round_trips() {
        let raw_snappy = snap::raw::Encoder::new()
            .compress_vec(TEXT)
            .expect("snappy into a Vec");
        let mut xerial = XERIAL_MAGIC.to_vec();
        xerial.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1]);
        xerial.extend_from_slice(&(raw_snappy.len() as u32).to_be_bytes());
        xerial.extend_from_slice(&raw_snappy);
        let zstd =
            ruzstd::encoding::compress_to_vec(TEXT, ruzstd::encoding::CompressionLevel::Fastest);
        for (codec, input) in [
            (Codec::None, TEXT.to_vec()),
            (Codec::Gzip, gzip(TEXT)),
            (Codec::Snappy, raw_snappy),
            (Codec::Snappy, xerial),
            (Codec::Lz4, lz4(TEXT)),
            (Codec::Zstd, zstd),
        ] {
            let output = decompress(codec, &input, 1024).expect("decompresses");
            assert_eq!(&output[..], TEXT, "{codec:?}");
        }
    }

    #[test]
    fn output_past_the_limit_is_refused_for_every_codec() {
        let big = vec![b'x'; 100_000];
        let raw_snappy = snap::raw::Encoder::new()
            .compress_vec(&big)
            .expect("snappy into a Vec");
        let zstd = ruzstd::encoding::compress_to_vec(
            &big[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        for (codec, input) in [
            (Codec::Gzip, gzip(&big)),
            (Codec::Snappy, raw_snappy),
            (Codec::Lz4, lz4(&big)),
            (Codec::Zstd, zstd),
        ] {
            assert_eq!(
                decompress(codec, &input, 1000),
                Err(DecompressError::TooLarge { codec, limit: 1000 }),
                "{codec:?}"
            );
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for codec in [Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd] {
            assert!(
                decompress(codec, b"\x01\x02\x03garbage", 1024).is_err(),
                "{codec:?}"
            );
        }
        assert_eq!(
            Codec::from_attributes(7),
            Err(DecompressError::UnknownCodec(7))
        );
    }
}
