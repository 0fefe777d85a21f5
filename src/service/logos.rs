//! Logo processing: judge the format by the bytes, decode with pixel and allocation limits off
//! the async workers (a bounded number at a time), crop to fill 256 × 256, re-encode as PNG
//! (which drops all metadata), and make a tiny `data:` URL preview.

use std::io::Cursor;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use image::imageops::FilterType;
use image::{DynamicImage, ImageError, ImageFormat, ImageReader, Limits};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::error::{AppError, AppResult};

/// Largest upload accepted, in bytes.
pub const MAX_UPLOAD_BYTES: usize = 2 * 1024 * 1024;
/// Largest request body that carries an upload: the image and the multipart framing (or, over
/// GraphQL, the operation) around it. REST and GraphQL both allow exactly this.
pub const UPLOAD_BODY_LIMIT: usize = MAX_UPLOAD_BYTES + 64 * 1024;
/// Largest width or height decoded.
pub const MAX_DIMENSION: u32 = 4096;
/// Most memory one decode may allocate.
pub const MAX_DECODE_ALLOC: u64 = 64 * 1024 * 1024;
/// Side of the stored logo.
pub const LOGO_SIZE: u32 = 256;
/// Side of the inline preview.
pub const PREVIEW_SIZE: u32 = 12;

/// A processed logo.
pub struct ProcessedLogo {
    /// The 256 × 256 PNG.
    pub png: Vec<u8>,
    /// Quoted strong ETag of `png`.
    pub etag: String,
    /// `data:image/png;base64,…` of a tiny thumbnail.
    pub preview: String,
}

fn encode_png(image: &DynamicImage) -> AppResult<Vec<u8>> {
    let mut out = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
        .map_err(AppError::internal)?;
    Ok(out)
}

/// Whether a file of `format` reaches its end marker. The decoders fill in what a truncated
/// JPEG or GIF lacks and report success, so an incomplete upload is refused here: a JPEG must
/// reach its End Of Image marker by [`jpeg_reaches_its_end`], a GIF must end with its trailer
/// `3B`. A truncated PNG fails to decode on its own.
fn is_complete(format: ImageFormat, bytes: &[u8]) -> bool {
    match format {
        ImageFormat::Jpeg => jpeg_reaches_its_end(bytes),
        ImageFormat::Gif => bytes
            .iter()
            .rev()
            .find(|byte| **byte != 0)
            .is_some_and(|last| *last == 0x3B),
        _ => true,
    }
}

/// Walks a JPEG's segments from its Start Of Image to its End Of Image marker (ITU T.81
/// Annex B): a segment that has a length is skipped by it, so the `FF D9` that ends an EXIF
/// thumbnail inside an `APP1` segment is never taken for the image's own end; after a Start Of
/// Scan header the entropy-coded data runs to the next marker (`FF 00` is an escaped `FF`, and
/// `FF D0`–`FF D7` are restart markers inside the scan). A file cut anywhere before its own End
/// Of Image runs out of bytes on the way.
fn jpeg_reaches_its_end(bytes: &[u8]) -> bool {
    const SOI: u8 = 0xD8;
    const EOI: u8 = 0xD9;
    const SOS: u8 = 0xDA;
    const TEM: u8 = 0x01;
    const RESTARTS: std::ops::RangeInclusive<u8> = 0xD0..=0xD7;
    if !bytes.starts_with(&[0xFF, SOI]) {
        return false;
    }
    let mut at = 2;
    loop {
        // A marker: one or more FF (fill bytes may repeat it), then its code.
        if bytes.get(at) != Some(&0xFF) {
            return false;
        }
        while bytes.get(at) == Some(&0xFF) {
            at += 1;
        }
        let Some(&marker) = bytes.get(at) else {
            return false;
        };
        at += 1;
        if marker == EOI {
            return true;
        }
        if marker == TEM || RESTARTS.contains(&marker) {
            continue;
        }
        // Every other segment starts with its length, which counts its own two bytes.
        let Some(&[high, low]) = bytes.get(at..at + 2) else {
            return false;
        };
        let length = usize::from(u16::from_be_bytes([high, low]));
        if length < 2 {
            return false;
        }
        at += length;
        if marker == SOS {
            loop {
                match (bytes.get(at), bytes.get(at + 1)) {
                    (Some(0xFF), Some(0x00)) => at += 2,
                    (Some(0xFF), Some(next)) if RESTARTS.contains(next) => at += 2,
                    (Some(0xFF), Some(_)) => break,
                    (Some(_), _) => at += 1,
                    (None, _) => return false,
                }
            }
        }
    }
}

fn process_blocking(bytes: &[u8]) -> AppResult<ProcessedLogo> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(AppError::internal)?;
    let format = match reader.format() {
        Some(format @ (ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::Gif)) => format,
        _ => return Err(AppError::invalid("image: must be a PNG, JPEG or GIF image")),
    };
    if !is_complete(format, bytes) {
        return Err(AppError::invalid(
            "image: the file is incomplete (truncated or corrupt)",
        ));
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_DIMENSION);
    limits.max_image_height = Some(MAX_DIMENSION);
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    reader.limits(limits);
    let decoded = reader.decode().map_err(|err| match err {
        ImageError::Limits(_) => AppError::invalid(format!(
            "image: larger than {MAX_DIMENSION} × {MAX_DIMENSION} pixels"
        )),
        _ => AppError::invalid("image: could not be decoded (truncated or corrupt)"),
    })?;
    let logo = decoded.resize_to_fill(LOGO_SIZE, LOGO_SIZE, FilterType::Lanczos3);
    let png = encode_png(&DynamicImage::ImageRgba8(logo.to_rgba8()))?;
    let thumb = logo.resize_to_fill(PREVIEW_SIZE, PREVIEW_SIZE, FilterType::Triangle);
    let preview_png = encode_png(&DynamicImage::ImageRgb8(thumb.to_rgb8()))?;
    let digest = Sha256::digest(&png);
    let etag = format!(
        "\"{}\"",
        digest[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    Ok(ProcessedLogo {
        png,
        etag,
        preview: format!("data:image/png;base64,{}", STANDARD.encode(preview_png)),
    })
}

/// Processes an uploaded image on the blocking pool, waiting for one of `permits`.
pub async fn process(permits: &Arc<Semaphore>, bytes: Vec<u8>) -> AppResult<ProcessedLogo> {
    if bytes.len() > MAX_UPLOAD_BYTES {
        return Err(AppError::PayloadTooLarge {
            limit: MAX_UPLOAD_BYTES,
        });
    }
    if bytes.is_empty() {
        return Err(AppError::invalid("image: the file is empty"));
    }
    let _permit = permits.acquire().await.map_err(AppError::internal)?;
    tokio::task::spawn_blocking(move || process_blocking(&bytes))
        .await
        .map_err(AppError::internal)?
}

#[cfg(test)]
mod tests {
    use super::jpeg_reaches_its_end;

    /// A segment: its marker, then its length (counting itself) and payload.
    fn segment(marker: u8, payload: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0xFF, marker];
        bytes.extend_from_slice(&u16::try_from(payload.len() + 2).unwrap().to_be_bytes());
        bytes.extend_from_slice(payload);
        bytes
    }

    /// SOI, an APP1 holding a whole "thumbnail" (its own SOS and EOI), a table, then a scan
    /// whose data holds an escaped FF and a restart marker, then EOI.
    fn camera_jpeg() -> Vec<u8> {
        let thumbnail = [0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02, 0x11, 0xFF, 0xD9];
        let mut bytes = vec![0xFF, 0xD8];
        bytes.extend(segment(
            0xE1,
            &[b"Exif\0\0".as_slice(), &thumbnail].concat(),
        ));
        bytes.extend(segment(0xDB, &[0u8; 65]));
        bytes.extend(segment(0xDA, &[1, 1, 0, 0, 63, 0]));
        bytes.extend([0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56, 0x78]);
        bytes.extend([0xFF, 0xD9]);
        bytes
    }

    #[test]
    fn a_whole_jpeg_reaches_its_end() {
        assert!(jpeg_reaches_its_end(&camera_jpeg()));
    }

    #[test]
    fn a_jpeg_cut_anywhere_before_its_own_end_does_not() {
        let whole = camera_jpeg();
        for cut in 0..whole.len() - 1 {
            assert!(!jpeg_reaches_its_end(&whole[..cut]), "cut at {cut}");
        }
    }

    #[test]
    fn not_a_jpeg_does_not() {
        assert!(!jpeg_reaches_its_end(b"GIF89a"));
        // A segment length below two cannot be.
        assert!(!jpeg_reaches_its_end(&[
            0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x01, 0xFF, 0xD9
        ]));
    }
}
