//! Test inputs built in code: images in each format, a decompression bomb, multipart bodies.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, Rgb, RgbImage};

/// A `width` × `height` gradient encoded as `format`.
pub fn image(format: ImageFormat, width: u32, height: u32) -> Vec<u8> {
    let pixels = RgbImage::from_fn(width, height, |x, y| {
        Rgb([
            (x * 255 / width.max(1)) as u8,
            (y * 255 / height.max(1)) as u8,
            128,
        ])
    });
    let mut out = Vec::new();
    DynamicImage::ImageRgb8(pixels)
        .write_to(&mut Cursor::new(&mut out), format)
        .expect("encode test image");
    out
}

/// A JPEG as cameras write them: an `APP1` (EXIF) segment right after the Start Of Image that
/// holds a whole thumbnail JPEG, with its own Start Of Scan and End Of Image markers, before
/// the main image. Answers the file and where the main image's bytes start.
pub fn jpeg_with_thumbnail(width: u32, height: u32) -> (Vec<u8>, usize) {
    let main = image(ImageFormat::Jpeg, width, height);
    let thumbnail = image(ImageFormat::Jpeg, 8, 8);
    let mut payload = b"Exif\0\0".to_vec();
    payload.extend_from_slice(&thumbnail);
    let length = u16::try_from(payload.len() + 2).expect("a thumbnail fits a segment");
    let mut file = vec![0xFF, 0xD8, 0xFF, 0xE1];
    file.extend_from_slice(&length.to_be_bytes());
    file.extend_from_slice(&payload);
    let main_starts = file.len();
    // The main image without its own Start Of Image.
    file.extend_from_slice(&main[2..]);
    (file, main_starts)
}

/// CRC-32 (ISO 3309, as PNG requires), bit by bit.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32(&body).to_be_bytes());
    out
}

/// A valid-looking PNG of a few dozen bytes that declares `side` × `side` RGBA pixels.
pub fn png_declaring(side: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = side.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&side.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]); // 8-bit RGBA, deflate, no filter, no interlace
    png.extend(chunk(b"IHDR", &ihdr));
    png.extend(chunk(
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    ));
    png.extend(chunk(b"IEND", &[]));
    png
}

pub const BOUNDARY: &str = "idgraph-test-boundary";

/// A multipart body with one file field.
pub fn multipart_file(field: &str, filename: &str, content_type: &str, bytes: &[u8]) -> Vec<u8> {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// A GraphQL multipart request (operations, map, one file as variable `image`).
pub fn graphql_upload(query: &str, client_id: &str, bytes: &[u8]) -> Vec<u8> {
    let operations = serde_json::json!({
        "query": query,
        "variables": { "clientId": client_id, "image": null }
    });
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{operations}\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"map\"\r\n\r\n{{\"0\": [\"variables.image\"]}}\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"0\"; filename=\"logo.png\"\r\nContent-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}
