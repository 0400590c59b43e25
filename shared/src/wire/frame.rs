//! Reading one length-prefixed response frame off a socket, bounded twice: the length prefix
//! by [`MAX_RESPONSE_FRAME_BYTES`], and the buffer by the bytes that actually arrived.
//!
//! The choice a reader may question: the buffer is not reserved from the length prefix (a
//! prefix is only a claim; a peer that says 99 MiB and sends ten bytes must not cost 99 MiB),
//! it starts small and grows as bytes come, so a frame costs at most about twice what was
//! received. It must not look inside the frame: [`super::shape`] checks its structure.

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The largest response frame accepted, as librdkafka's `receive.message.max.bytes` (100 MB
/// by default); a Fetch asks for at most `fetch.max.bytes` (50 MiB), so a real broker stays
/// under it, and a longer length prefix means a corrupt or hostile stream.
pub const MAX_RESPONSE_FRAME_BYTES: usize = 100 * 1024 * 1024;

/// Every response starts with a correlation id.
const MIN_RESPONSE_FRAME_BYTES: usize = 4;

/// What is reserved before the first bytes arrive; larger frames grow the buffer as they come.
const FIRST_RESERVATION: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error(
        "a frame length prefix of {length} bytes (accepted: {MIN_RESPONSE_FRAME_BYTES} to {max})"
    )]
    BadLength { length: i32, max: usize },
    #[error("a frame cut short: the stream ended after {received} of its {length} bytes")]
    Truncated { received: usize, length: usize },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Reads one frame and returns its bytes after the length prefix.
pub async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R) -> Result<Bytes, FrameError> {
    let length = reader.read_i32().await?;
    let size = usize::try_from(length)
        .ok()
        .filter(|l| (MIN_RESPONSE_FRAME_BYTES..=MAX_RESPONSE_FRAME_BYTES).contains(l))
        .ok_or(FrameError::BadLength {
            length,
            max: MAX_RESPONSE_FRAME_BYTES,
        })?;
    let mut body = Vec::with_capacity(size.min(FIRST_RESERVATION));
    let received = reader.take(size as u64).read_to_end(&mut body).await?;
    if received < size {
        return Err(FrameError::Truncated {
            received,
            length: size,
        });
    }
    Ok(Bytes::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(length: i32, body: &[u8]) -> Vec<u8> {
        let mut bytes = length.to_be_bytes().to_vec();
        bytes.extend_from_slice(body);
        bytes
    }

    #[tokio::test]
    async fn a_whole_frame_is_returned_without_its_prefix() {
        let bytes = framed(6, &[0, 0, 0, 7, 1, 2, 9, 9]);
        let frame = read_frame(&mut bytes.as_slice()).await.expect("reads");
        assert_eq!(&frame[..], &[0, 0, 0, 7, 1, 2]);
    }

    #[tokio::test]
    async fn a_prefix_past_the_maximum_or_below_a_correlation_id_is_refused() {
        for length in [i32::MAX, -1, 3, (MAX_RESPONSE_FRAME_BYTES + 1) as i32] {
            let bytes = framed(length, &[0; 16]);
            match read_frame(&mut bytes.as_slice()).await {
                Err(FrameError::BadLength { length: got, .. }) => assert_eq!(got, length),
                other => panic!("length {length}: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn a_stream_that_ends_inside_a_frame_says_how_much_came() {
        let bytes = framed(50_000_000, &[0; 10]);
        match read_frame(&mut bytes.as_slice()).await {
            Err(FrameError::Truncated { received, length }) => {
                assert_eq!((received, length), (10, 50_000_000));
            }
            other => panic!("{other:?}"),
        }
    }
}
