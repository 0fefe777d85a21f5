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
/// hold its End Of Image marker after the Start Of Scan (inside entropy-coded data `FF` is
/// always escaped, so `FF D9` cannot appear there), a GIF must end with its trailer `3B`. A
/// truncated PNG fails to decode on its own.
fn is_complete(format: ImageFormat, bytes: &[u8]) -> bool {
    match format {
        ImageFormat::Jpeg => {
            let find = |marker: [u8; 2], from: usize| {
                bytes[from.min(bytes.len())..]
                    .windows(2)
                    .position(|pair| pair == marker)
                    .map(|at| at + from)
            };
            find([0xFF, 0xDA], 0)
                .and_then(|scan| find([0xFF, 0xD9], scan + 2))
                .is_some()
        }
        ImageFormat::Gif => bytes
            .iter()
            .rev()
            .find(|byte| **byte != 0)
            .is_some_and(|last| *last == 0x3B),
        _ => true,
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
