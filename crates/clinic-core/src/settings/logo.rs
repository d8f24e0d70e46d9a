//! The clinic's logo, printed at the top of every paper. An admin uploads a PNG or JPEG; it is
//! decoded under limits, flattened on white, scaled to fit 600 x 200 pixels and kept as a PNG
//! ClinicDesk wrote itself, so nothing else of the uploaded file is kept.

use std::io::Cursor;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use image::{ImageFormat, ImageReader, Limits, Rgb, RgbImage};
use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;
use specta::Type;

use super::{Field, Table};
use crate::error::{Error, Reason, Result};
use crate::store::Write;

/// The largest file accepted.
pub const MAX_LOGO_BYTES: usize = 2 * 1024 * 1024;
/// The largest picture accepted, per side, before it is scaled down.
pub const MAX_LOGO_SIDE: u32 = 8192;
/// The box a kept logo fits in, in pixels: about 50 x 17 mm at 300 dpi.
pub const LOGO_BOX: (u32, u32) = (600, 200);

const ID: &str = "logo";

/// The kept logo, as the settings screen shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
pub struct Logo {
    pub width: u32,
    pub height: u32,
    /// `data:image/png;base64,…`
    pub data_url: String,
}

fn invalid() -> Error {
    Error::invalid(Field::Logo, Reason::InvalidFormat)
}

/// The most pixels a picture may have before it is scaled down (a 4000 x 4000 picture).
/// Checked from the file's header, before anything is decoded.
pub const MAX_LOGO_PIXELS: u64 = 16_000_000;
/// The most memory decoding may take (a 16-bit RGBA picture of `MAX_LOGO_PIXELS` would need
/// 128 MB; such pictures are refused).
const MAX_DECODE_ALLOC: u64 = 96 * 1024 * 1024;

fn limits(side: u32, alloc: u64) -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(side);
    limits.max_image_height = Some(side);
    limits.max_alloc = Some(alloc);
    limits
}

fn reader(bytes: &[u8], limits: Limits) -> Result<ImageReader<Cursor<&[u8]>>> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|_| invalid())?;
    if !matches!(reader.format(), Some(ImageFormat::Png | ImageFormat::Jpeg)) {
        return Err(invalid());
    }
    reader.limits(limits);
    Ok(reader)
}

/// Decodes an uploaded PNG or JPEG and makes the logo that is kept: flattened on white, no
/// larger than `LOGO_BOX`, encoded as PNG. The picture's size is read from its header first
/// and anything past the limits refused before a pixel is decoded.
pub fn prepare(bytes: &[u8]) -> Result<Prepared> {
    let too_large = || Error::invalid_limit(Field::Logo, Reason::OutOfRange, MAX_LOGO_SIDE as i64);
    let (w, h) = reader(bytes, limits(MAX_LOGO_SIDE, MAX_DECODE_ALLOC))?
        .into_dimensions()
        .map_err(|e| match e {
            image::ImageError::Limits(_) => too_large(),
            _ => invalid(),
        })?;
    if w == 0 || h == 0 {
        return Err(invalid());
    }
    if w as u64 * h as u64 > MAX_LOGO_PIXELS {
        return Err(too_large());
    }
    let picture = reader(bytes, limits(MAX_LOGO_SIDE, MAX_DECODE_ALLOC))?
        .decode()
        .map_err(|e| match e {
            image::ImageError::Limits(_) => too_large(),
            _ => invalid(),
        })?;
    // Consumed, so the decoded picture and its 8-bit copy are not both kept.
    let rgba = picture.into_rgba8();
    let mut flat = RgbImage::new(w, h);
    for (x, y, p) in rgba.enumerate_pixels() {
        let a = p[3] as u32;
        let mix = |c: u8| ((c as u32 * a + 255 * (255 - a) + 127) / 255) as u8;
        flat.put_pixel(x, y, Rgb([mix(p[0]), mix(p[1]), mix(p[2])]));
    }
    drop(rgba);
    let scale = f64::min(
        1.0,
        f64::min(LOGO_BOX.0 as f64 / w as f64, LOGO_BOX.1 as f64 / h as f64),
    );
    let (nw, nh) = (
        ((w as f64 * scale).round() as u32).clamp(1, LOGO_BOX.0),
        ((h as f64 * scale).round() as u32).clamp(1, LOGO_BOX.1),
    );
    let kept = if (nw, nh) == (w, h) {
        flat
    } else {
        image::imageops::resize(&flat, nw, nh, image::imageops::FilterType::CatmullRom)
    };
    let mut png = vec![];
    kept.write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
        .map_err(Error::internal)?;
    Ok(Prepared {
        png,
        width: nw,
        height: nh,
    })
}

/// A logo ready to keep: what `prepare` made of an upload.
pub struct Prepared {
    png: Vec<u8>,
    width: u32,
    height: u32,
}

/// Decodes `base64` (a PNG or JPEG file) into the logo to keep. Done before the write begins:
/// decoding takes time and memory that no other write should wait behind.
pub fn decode(base64: &str) -> Result<Prepared> {
    let text = base64.trim();
    let too_big = || Error::invalid_limit(Field::Logo, Reason::TooLong, MAX_LOGO_BYTES as i64);
    // Measured before decoding: base64 is 4 characters for every 3 bytes.
    if text.len() > MAX_LOGO_BYTES.div_ceil(3) * 4 {
        return Err(too_big());
    }
    let bytes = B64.decode(text).map_err(|_| invalid())?;
    if bytes.len() > MAX_LOGO_BYTES {
        return Err(too_big());
    }
    prepare(&bytes)
}

/// Keeps a prepared logo, replacing any before it.
pub fn set(w: &mut Write<'_>, logo: Prepared) -> Result<Logo> {
    let Prepared { png, width, height } = logo;
    if png_of(w.conn())?.is_some() {
        w.update(
            Table::ClinicLogo,
            ID,
            "UPDATE clinic_logo SET png = ?2, width = ?3, height = ?4, updated_at = ?5, updated_by = ?6
             WHERE id = ?1",
            rusqlite::params![ID, png, width, height, w.now_ts(), w.actor_id()],
        )?;
    } else {
        w.insert(
            Table::ClinicLogo,
            ID,
            "INSERT INTO clinic_logo (id, png, width, height, created_at, created_by, updated_at, updated_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?5, ?6)",
            rusqlite::params![ID, png, width, height, w.now_ts(), w.actor_id()],
        )?;
    }
    Ok(Logo {
        width,
        height,
        data_url: data_url(&png),
    })
}

/// The kept logo as pixels for a paper, decoded with limits of a kept logo (it is ours, but
/// the database could have been edited by someone with a key). `None` if there is none or it
/// is not one ClinicDesk could have kept: a paper then prints without it.
pub fn pixels(conn: &Connection) -> Result<Option<RgbImage>> {
    let Some(png) = png_of(conn)? else {
        return Ok(None);
    };
    let decoded = ImageReader::with_format(Cursor::new(&png[..]), ImageFormat::Png);
    let mut decoded = decoded;
    decoded.limits(limits(LOGO_BOX.0, 4 * 1024 * 1024));
    Ok(decoded
        .decode()
        .ok()
        .map(|p| p.into_rgb8())
        .filter(|p| p.width() <= LOGO_BOX.0 && p.height() <= LOGO_BOX.1))
}

/// Removes the logo (papers then start with the clinic's name).
pub fn clear(w: &mut Write<'_>) -> Result<()> {
    if png_of(w.conn())?.is_some() {
        w.delete(Table::ClinicLogo, ID)?;
    }
    Ok(())
}

/// The kept PNG, if there is a logo.
pub fn png_of(conn: &Connection) -> Result<Option<Vec<u8>>> {
    Ok(conn
        .prepare_cached("SELECT png FROM clinic_logo WHERE id = ?1")?
        .query_row([ID], |r| r.get(0))
        .optional()?)
}

pub fn get(conn: &Connection) -> Result<Option<Logo>> {
    Ok(conn
        .prepare_cached("SELECT png, width, height FROM clinic_logo WHERE id = ?1")?
        .query_row([ID], |r| {
            Ok(Logo {
                data_url: data_url(&r.get::<_, Vec<u8>>(0)?),
                width: r.get(1)?,
                height: r.get(2)?,
            })
        })
        .optional()?)
}

fn data_url(png: &[u8]) -> String {
    format!("data:image/png;base64,{}", B64.encode(png))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(img: &image::DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut out = vec![];
        img.write_to(&mut Cursor::new(&mut out), format).unwrap();
        out
    }

    #[test]
    fn a_logo_is_scaled_into_its_box_flattened_on_white_and_kept_as_png() {
        // 1200 x 300 with a transparent left half and a red right half.
        let mut rgba = image::RgbaImage::new(1200, 300);
        for (x, _, p) in rgba.enumerate_pixels_mut() {
            *p = if x < 600 {
                image::Rgba([0, 0, 0, 0])
            } else {
                image::Rgba([200, 0, 0, 255])
            };
        }
        let png = encode(&image::DynamicImage::ImageRgba8(rgba), ImageFormat::Png);
        let Prepared {
            png: kept,
            width: w,
            height: h,
        } = prepare(&png).unwrap();
        assert_eq!((w, h), (600, 150));
        let back = image::load_from_memory(&kept).unwrap().to_rgb8();
        assert_eq!(back.dimensions(), (600, 150));
        assert_eq!(
            back.get_pixel(10, 10),
            &Rgb([255, 255, 255]),
            "transparent became white"
        );
        assert_eq!(back.get_pixel(590, 140), &Rgb([200, 0, 0]));

        // A small JPEG is kept at its size.
        let jpeg = encode(
            &image::DynamicImage::ImageRgb8(RgbImage::from_pixel(120, 40, Rgb([0, 90, 160]))),
            ImageFormat::Jpeg,
        );
        let p = prepare(&jpeg).unwrap();
        assert_eq!((p.width, p.height), (120, 40));
    }

    /// PNG's chunk checksum (ISO 3309 CRC-32), for forging a header.
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in bytes {
            crc ^= b as u32;
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn what_is_not_a_png_or_jpeg_within_limits_is_refused_with_a_field_error() {
        let code = |r: Result<Prepared>| match r.err().unwrap() {
            Error::Invalid { field, reason, .. } => (field.0, reason),
            e => panic!("{e:?}"),
        };
        assert_eq!(
            code(prepare(b"not an image")),
            ("logo", Reason::InvalidFormat)
        );
        let gif = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;";
        assert_eq!(code(prepare(gif)), ("logo", Reason::InvalidFormat));
        // A PNG cut short.
        let png = encode(
            &image::DynamicImage::ImageRgb8(RgbImage::new(50, 50)),
            ImageFormat::Png,
        );
        assert_eq!(
            code(prepare(&png[..png.len() / 2])),
            ("logo", Reason::InvalidFormat)
        );
        // Pictures claiming too many pixels are refused from their header, before anything
        // is decoded (their data is the 50 x 50 picture's, so decoding would fail otherwise):
        // past the side limit, and within it but past the pixel limit (8000 x 2500).
        let claiming = |w: u32, h: u32| {
            let mut forged = png.clone();
            forged[16..20].copy_from_slice(&w.to_be_bytes());
            forged[20..24].copy_from_slice(&h.to_be_bytes());
            let crc = crc32(&forged[12..29]);
            forged[29..33].copy_from_slice(&crc.to_be_bytes());
            forged
        };
        assert_eq!(
            code(prepare(&claiming(20000, 20000))),
            ("logo", Reason::OutOfRange)
        );
        assert_eq!(
            code(prepare(&claiming(8000, 2500))),
            ("logo", Reason::OutOfRange)
        );
        assert_eq!(
            code(prepare(&claiming(4000, 4000))),
            ("logo", Reason::InvalidFormat)
        );
    }
}
