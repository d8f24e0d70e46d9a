//! Fonts and shaping: which face draws each character, and where each glyph goes.
//!
//! Latin, Cyrillic and everything else DejaVu covers are drawn in DejaVu Sans; Thai in Noto
//! Sans Thai (both ship in `assets/fonts` with their licences). A line may mix them: it is cut
//! into runs of one face, and each run is shaped by rustybuzz (HarfBuzz's shaping in Rust), so
//! Thai vowels and tone marks take the glyphs and the x *and* y offsets the font asks for.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::OnceLock;

use rustybuzz::{Face as RbFace, UnicodeBuffer};

/// The embedded faces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Face {
    Sans,
    SansBold,
    Thai,
    ThaiBold,
    Mono,
}

impl Face {
    pub const ALL: [Face; 5] = [
        Face::Sans,
        Face::SansBold,
        Face::Thai,
        Face::ThaiBold,
        Face::Mono,
    ];

    pub fn bytes(self) -> &'static [u8] {
        match self {
            Face::Sans => include_bytes!("../../../../assets/fonts/DejaVuSans.ttf"),
            Face::SansBold => include_bytes!("../../../../assets/fonts/DejaVuSans-Bold.ttf"),
            Face::Thai => include_bytes!("../../../../assets/fonts/NotoSansThai-Regular.ttf"),
            Face::ThaiBold => include_bytes!("../../../../assets/fonts/NotoSansThai-Bold.ttf"),
            Face::Mono => include_bytes!("../../../../assets/fonts/DejaVuSansMono.ttf"),
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// The parsed face, parsed once per process.
    pub fn rb(self) -> &'static RbFace<'static> {
        static FACES: [OnceLock<RbFace<'static>>; 5] = [const { OnceLock::new() }; 5];
        FACES[self.index()]
            .get_or_init(|| RbFace::from_slice(self.bytes(), 0).expect("embedded font parses"))
    }

    fn units_per_em(self) -> f32 {
        self.rb().units_per_em() as f32
    }

    fn has(self, c: char) -> bool {
        self.rb().glyph_index(c).is_some()
    }
}

/// How a piece of text is set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Style {
    /// Points.
    pub size: f32,
    pub bold: bool,
    pub mono: bool,
}

impl Style {
    pub const fn new(size: f32) -> Style {
        Style {
            size,
            bold: false,
            mono: false,
        }
    }
    pub const fn bold(self) -> Style {
        Style { bold: true, ..self }
    }
    pub const fn mono(self) -> Style {
        Style { mono: true, ..self }
    }
    /// Baseline to baseline.
    pub fn line_height(self) -> f32 {
        self.size * 1.45
    }
}

fn is_thai(c: char) -> bool {
    ('\u{0E00}'..='\u{0E7F}').contains(&c)
}

/// Spaces, digits and punctuation belong to no script: they stay in the run they are in.
fn is_common(c: char) -> bool {
    c.is_whitespace()
        || c.is_ascii_digit()
        || c.is_ascii_punctuation()
        || matches!(c, '·' | '–' | '—' | '…' | '“' | '”' | '«' | '»' | '№')
}

/// The face for `c`: Thai letters in the Thai face, the rest in DejaVu, and whatever DejaVu
/// lacks in the Thai face if that has it.
fn face_for(c: char, style: Style) -> Face {
    if style.mono {
        return Face::Mono;
    }
    let (latin, thai) = if style.bold {
        (Face::SansBold, Face::ThaiBold)
    } else {
        (Face::Sans, Face::Thai)
    };
    if is_thai(c) || (!latin.has(c) && thai.has(c)) {
        thai
    } else {
        latin
    }
}

/// One glyph, placed relative to the start of its line, in points.
#[derive(Debug, Clone, PartialEq)]
pub struct Glyph {
    pub face: Face,
    pub gid: u16,
    /// Pen position plus the glyph's own offset.
    pub x: f32,
    /// Up from the baseline.
    pub y: f32,
    /// The glyph's x and y offsets and advance in font units, as HarfBuzz reports them.
    pub units: (i32, i32, i32),
}

/// A shaped piece of text: its glyphs, its width and the runs of text they draw (for the
/// PDF's text layer: copying and searching give back exactly this text).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Shaped {
    pub glyphs: Vec<Glyph>,
    pub width: f32,
    /// (first glyph, glyph count, the text those glyphs draw)
    pub spans: Vec<(usize, usize, String)>,
}

/// Runs of one face.
fn runs(text: &str, style: Style) -> Vec<(Face, &str)> {
    let mut out: Vec<(Face, &str)> = vec![];
    let mut start = 0;
    let mut current: Option<Face> = None;
    for (i, c) in text.char_indices() {
        // Spaces, digits and punctuation stay in the run they are in, if its face has them;
        // combining marks stay with their letter. Before the first letter they wait.
        let stays =
            is_common(c) || (unicode_normalization::char::is_combining_mark(c) && !is_thai(c));
        if stays && current.is_none_or(|f| f.has(c)) {
            continue;
        }
        let f = face_for(c, style);
        match current {
            None => {
                // What waited goes with this letter's face if that face has all of it
                // ("(สมชาย"), else in a run of its own ("99/1 ถนน": Noto Sans Thai has no
                // Latin digits).
                if !text[..i].chars().all(|p| f.has(p) || p.is_whitespace()) {
                    out.push((face_for('0', style), &text[..i]));
                    start = i;
                }
                current = Some(f);
            }
            Some(cur) if cur != f => {
                out.push((cur, &text[start..i]));
                start = i;
                current = Some(f);
            }
            _ => {}
        }
    }
    if start < text.len() {
        out.push((current.unwrap_or(face_for('a', style)), &text[start..]));
    }
    out
}

/// The shaping plan for `face` and the buffer's script and direction. Making a
/// plan reads the font's shaping tables, most of the time of shaping a short run: plans are
/// kept per thread.
fn plan(face: Face, buffer: &UnicodeBuffer) -> Rc<rustybuzz::ShapePlan> {
    type Key = (Face, rustybuzz::Direction, rustybuzz::Script);
    thread_local! {
        static PLANS: RefCell<HashMap<Key, Rc<rustybuzz::ShapePlan>>> = RefCell::default();
    }
    let key = (face, buffer.direction(), buffer.script());
    PLANS.with_borrow_mut(|plans| {
        plans
            .entry(key)
            .or_insert_with(|| {
                Rc::new(rustybuzz::ShapePlan::new(
                    face.rb(),
                    key.1,
                    Some(key.2),
                    None,
                    &[],
                ))
            })
            .clone()
    })
}

/// Shapes `text` (one line, no line breaks) in `style`.
pub fn shape(text: &str, style: Style) -> Shaped {
    let mut shaped = Shaped::default();
    let mut pen = 0.0f32;
    for (face, run) in runs(text, style) {
        let rb = face.rb();
        let scale = style.size / face.units_per_em();
        let mut buffer = UnicodeBuffer::new();
        buffer.push_str(run);
        buffer.guess_segment_properties();
        let out = rustybuzz::shape_with_plan(rb, &plan(face, &buffer), buffer);
        let first = shaped.glyphs.len();
        for (info, pos) in out.glyph_infos().iter().zip(out.glyph_positions()) {
            shaped.glyphs.push(Glyph {
                face,
                gid: info.glyph_id as u16,
                x: pen + pos.x_offset as f32 * scale,
                y: pos.y_offset as f32 * scale,
                units: (pos.x_offset, pos.y_offset, pos.x_advance),
            });
            pen += pos.x_advance as f32 * scale;
        }
        shaped
            .spans
            .push((first, shaped.glyphs.len() - first, run.to_string()));
    }
    shaped.width = pen;
    shaped
}

/// The width of `text` in `style`, in points.
pub fn width(text: &str, style: Style) -> f32 {
    shape(text, style).width
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_mixing_scripts_is_cut_into_runs_by_face() {
        let r = runs("Invoice for สมชาย ใจดี (Иван) 2026", Style::new(10.0));
        let faces: Vec<Face> = r.iter().map(|(f, _)| *f).collect();
        assert_eq!(faces, [Face::Sans, Face::Thai, Face::Sans]);
        // The Thai face has no "(": it goes with the Cyrillic that follows, not into a box.
        assert!(r[2].1.starts_with('('), "{r:?}");
        for (f, t) in &r {
            assert!(
                t.chars().filter(|c| !c.is_whitespace()).all(|c| f.has(c)),
                "{f:?} lacks a glyph in {t:?}"
            );
        }
        assert_eq!(
            r.iter().map(|(_, t)| *t).collect::<String>(),
            "Invoice for สมชาย ใจดี (Иван) 2026"
        );
    }

    #[test]
    fn digits_before_thai_letters_are_drawn_in_a_face_that_has_them() {
        let r = runs("99/1 ถนนสุขุมวิท", Style::new(10.0));
        assert_eq!(r, [(Face::Sans, "99/1 "), (Face::Thai, "ถนนสุขุมวิท")]);
        let r = runs("20 / พาราเซตามอล", Style::new(10.0).bold());
        assert_eq!(r[0], (Face::SansBold, "20 / "));
        // A space alone waits for the letter and goes with it.
        assert_eq!(runs(" ไทย", Style::new(10.0)), [(Face::Thai, " ไทย")]);
        for text in ["99/1 ถนน", "(๑) ไทย", "№ 5 ไทย", "Иван 5 ไทย"]
        {
            for (f, t) in runs(text, Style::new(10.0)) {
                assert!(
                    t.chars().all(|c| c.is_whitespace() || f.has(c)),
                    "{f:?} lacks a glyph in {t:?}"
                );
            }
        }
    }

    #[test]
    fn thai_marks_take_their_glyphs_and_every_glyph_exists() {
        let s = shape("ที่", Style::new(12.0));
        assert_eq!(s.glyphs.len(), 3);
        assert!(s.glyphs.iter().all(|g| g.face == Face::Thai && g.gid != 0));
        // The tone mark over sara ii is a separate, lowered ("small") glyph, not the plain one.
        let plain = Face::Thai.rb().glyph_index('\u{0E48}').unwrap().0;
        assert_ne!(s.glyphs[2].gid, plain);
        assert!(s.width > 0.0 && s.spans.len() == 1);
    }
}
