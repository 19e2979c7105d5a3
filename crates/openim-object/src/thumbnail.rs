//! Thumbnails for `access_url`'s image options (`type=image&width=…&height=…&format=…`), as
//! OpenIM's MinIO store makes them: the picture scaled to fit the box, keeping its proportions,
//! in PNG (the default), JPEG or GIF.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, ImageReader, Limits};

/// Largest picture decoded for a thumbnail, in bytes (OpenIM's limit).
pub const MAX_SOURCE_BYTES: u64 = 50 << 20;
/// Largest side accepted, in the request and in a decoded picture.
pub const MAX_SIDE: u32 = 16_384;

/// A thumbnail's encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Png,
    Jpeg,
    Gif,
}

impl Format {
    /// `png`, `jpeg`/`jpg` or `gif`; anything else is PNG, as in OpenIM.
    pub fn parse(s: &str) -> Self {
        match s.to_ascii_lowercase().as_str() {
            "jpeg" | "jpg" => Format::Jpeg,
            "gif" => Format::Gif,
            _ => Format::Png,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Png => "png",
            Format::Jpeg => "jpeg",
            Format::Gif => "gif",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Png => "image/png",
            Format::Jpeg => "image/jpeg",
            Format::Gif => "image/gif",
        }
    }

    fn image_format(self) -> ImageFormat {
        match self {
            Format::Png => ImageFormat::Png,
            Format::Jpeg => ImageFormat::Jpeg,
            Format::Gif => ImageFormat::Gif,
        }
    }
}

/// What to serve for a thumbnail request.
#[derive(Debug)]
pub enum Thumbnail {
    /// Not a picture this server decodes: the object itself.
    NotAnImage,
    /// The box is no smaller than the picture and the format is its own: the object itself.
    Original,
    /// A new picture, encoded.
    Scaled(Vec<u8>),
}

/// Scales `data` to fit `width` × `height` (0: the picture's own) in `format`. Runs for as long
/// as decoding takes: call it off the async threads.
pub fn make(data: &[u8], width: u32, height: u32, format: Format) -> Thumbnail {
    let Ok(reader) = ImageReader::new(Cursor::new(data)).with_guessed_format() else {
        return Thumbnail::NotAnImage;
    };
    let source_format = reader.format();
    let mut reader = reader;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(512 << 20);
    reader.limits(limits);
    let Ok(img) = reader.decode() else {
        return Thumbnail::NotAnImage;
    };
    let (w, h) = (fit(width, img.width()), fit(height, img.height()));
    if w == img.width() && h == img.height() && source_format == Some(format.image_format()) {
        return Thumbnail::Original;
    }
    let scaled = if (w, h) == (img.width(), img.height()) {
        img
    } else {
        img.resize(w, h, image::imageops::FilterType::Triangle)
    };
    match encode(&scaled, format) {
        Some(bytes) => Thumbnail::Scaled(bytes),
        None => Thumbnail::NotAnImage,
    }
}

/// The requested side, or the picture's when none or a larger one was asked for.
fn fit(requested: u32, actual: u32) -> u32 {
    if requested == 0 || requested > actual { actual } else { requested }
}

fn encode(img: &DynamicImage, format: Format) -> Option<Vec<u8>> {
    let mut out = Cursor::new(Vec::new());
    let done = match format {
        Format::Jpeg => {
            let rgb = DynamicImage::ImageRgb8(img.to_rgb8());
            rgb.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80))
        }
        Format::Gif => DynamicImage::ImageRgba8(img.to_rgba8()).write_to(&mut out, ImageFormat::Gif),
        Format::Png => img.write_to(&mut out, ImageFormat::Png),
    };
    done.ok().map(|()| out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 128]));
        let mut out = Cursor::new(Vec::new());
        DynamicImage::ImageRgb8(img).write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    fn size_of(data: &[u8]) -> (u32, u32) {
        let img = image::load_from_memory(data).unwrap();
        (img.width(), img.height())
    }

    #[test]
    fn a_picture_is_scaled_to_fit_the_box_keeping_its_proportions() {
        let Thumbnail::Scaled(small) = make(&png(800, 600), 640, 640, Format::Png) else { panic!("not scaled") };
        assert_eq!(size_of(&small), (640, 480));
        let Thumbnail::Scaled(jpeg) = make(&png(800, 600), 100, 0, Format::Jpeg) else { panic!("not scaled") };
        assert_eq!(image::guess_format(&jpeg).unwrap(), ImageFormat::Jpeg);
        assert_eq!(size_of(&jpeg), (100, 75));
    }

    #[test]
    fn a_box_as_large_as_the_picture_serves_the_original() {
        assert!(matches!(make(&png(300, 200), 640, 640, Format::Png), Thumbnail::Original));
        assert!(matches!(make(&png(300, 200), 0, 0, Format::Gif), Thumbnail::Scaled(_)), "another format is made");
    }

    #[test]
    fn what_is_not_a_picture_is_served_as_it_is() {
        assert!(matches!(make(b"plain text, not a picture", 64, 64, Format::Png), Thumbnail::NotAnImage));
        let mut truncated = png(100, 100);
        truncated.truncate(60);
        assert!(matches!(make(&truncated, 64, 64, Format::Png), Thumbnail::NotAnImage));
    }
}
