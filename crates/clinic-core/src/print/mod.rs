//! The document engine every printed paper goes through: prescriptions, invoices, receipts,
//! labels, reports, the recovery sheet.
//!
//! A `Document` is a list of blocks (a header, paragraphs, key/value rows, tables, totals).
//! `render` lays it out on A4, Letter or an 80 mm receipt roll and writes a PDF:
//! - text is shaped (`shape.rs`: rustybuzz, a Thai face and a Latin/Cyrillic face per
//!   character), and every glyph placed with its x and y offsets;
//! - lines break where Unicode allows (`icu_segmenter`, with its Thai dictionary), so a Thai
//!   word is never cut;
//! - tables repeat their header on every page and never cut a row;
//! - each page has a footer with "page n of m";
//! - the text behind the glyphs is kept (PDF `ActualText`), so copying or `pdftotext` gives
//!   back exactly what went in;
//! - fonts are subset: a one-page invoice stays small.

use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use printpdf::{
    Color, DictItem, Line, LinePoint, Mm, Op, ParsedFont, PdfDocument, PdfFontHandle, PdfPage,
    PdfSaveOptions, Point, Pt, RawImage, RawImageData, RawImageFormat, Rgb, TextItem, TextMatrix,
    XObjectTransform,
};

use crate::error::{Error, Result};

pub mod recovery;
pub mod shape;
pub mod test_page;

pub use recovery::recovery_sheet;

pub use shape::Style;
use shape::{shape, width, Face, Shaped};

pub use crate::settings::Paper;

/// Why a paper did not reach the printer. (Rendering itself only fails on a broken build.)
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, specta::Type)]
#[serde(
    tag = "code",
    content = "params",
    rename_all = "snake_case",
    rename = "PrintError"
)]
pub enum PrintError {
    /// No print dialog on this system: the paper can still be saved and printed from a viewer.
    #[error("printing from ClinicDesk is not available here: save the PDF and print it from a PDF viewer")]
    PrintUnavailable,
    /// The printer or its spooler refused the job.
    #[error("the printer refused the document: {detail}")]
    PrintFailed { detail: String },
}

impl From<PrintError> for Error {
    fn from(e: PrintError) -> Self {
        Error::domain(e)
    }
}

/// Where a paper goes: a file the person picks, or a printer through the system's dialog.
/// Each paper has a command for each (`<paper>_save`, `<paper>_print`), checked apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Output {
    Save,
    Print,
}

const MM: f32 = 72.0 / 25.4;

impl Paper {
    /// Width and height in points (a roll's height follows the content).
    fn size(self) -> (f32, f32) {
        match self {
            Paper::A4 => (210.0 * MM, 297.0 * MM),
            Paper::Letter => (612.0, 792.0),
            Paper::Roll80 => (80.0 * MM, 0.0),
        }
    }
    fn margin(self) -> f32 {
        match self {
            Paper::Roll80 => 4.0 * MM,
            _ => 18.0 * MM,
        }
    }
    /// Body text size.
    fn text(self) -> f32 {
        match self {
            Paper::Roll80 => 8.0,
            _ => 10.0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

#[derive(Debug, Clone)]
pub struct Column {
    pub title: String,
    /// Share of the table's width (the shares are summed and scaled to the width).
    pub width: f32,
    pub align: Align,
}

impl Column {
    pub fn new(title: impl Into<String>, width: f32, align: Align) -> Column {
        Column {
            title: title.into(),
            width,
            align,
        }
    }
}

/// A picture to print (the clinic's logo): 8-bit RGB pixels, row by row.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

impl Image {
    pub fn from_rgb(rgb: image::RgbImage) -> Image {
        Image {
            width: rgb.width() as usize,
            height: rgb.height() as usize,
            rgb: rgb.into_raw(),
        }
    }
}

#[derive(Debug, Clone)]
pub enum Block {
    /// The clinic's name (large), then lines such as its address and phone; its logo on the
    /// right (above, on a roll).
    Header {
        name: String,
        lines: Vec<String>,
        logo: Option<Arc<Image>>,
    },
    Title(String),
    Paragraph(String),
    /// A paragraph in a style of its own (a recovery key in large monospace).
    Styled {
        text: String,
        style: Style,
    },
    /// Label: value rows.
    KeyValues(Vec<(String, String)>),
    Table {
        columns: Vec<Column>,
        rows: Vec<Vec<String>>,
    },
    /// Right-aligned label and amount rows; the last one in bold.
    Totals(Vec<(String, String)>),
    /// A line across (`label` under it, for a signature).
    Rule {
        label: Option<String>,
    },
    Space(f32),
}

#[derive(Debug, Clone)]
pub struct Document {
    pub title: String,
    pub paper: Paper,
    pub blocks: Vec<Block>,
    /// The footer's text on the left (a clinic name, a printed-at time).
    pub footer: String,
    /// The page label with `{n}` and `{m}` (translated by the caller): "Page {n} of {m}".
    pub page_label: String,
}

/// One thing to draw, at page coordinates in points from the top-left.
#[derive(Debug, Clone)]
enum Item {
    Text {
        x: f32,
        baseline: f32,
        shaped: Shaped,
        style: Style,
    },
    Rule {
        x1: f32,
        x2: f32,
        y: f32,
        width: f32,
    },
    /// `top` is the picture's top edge; `w` and `h` its printed size.
    Image {
        x: f32,
        top: f32,
        w: f32,
        h: f32,
        image: Arc<Image>,
    },
}

/// Lines of `text` no wider than `max`, broken where Unicode allows (never inside a Thai
/// word), and at each newline.
///
/// Each piece between two break opportunities is shaped once; a line's width is the sum of
/// its pieces (shaping doesn't reach across a break opportunity, short of a kerning pair
/// around a space).
pub fn wrap(text: &str, style: Style, max: f32) -> Vec<String> {
    let segmenter = icu_segmenter::LineSegmenter::new_auto(Default::default());
    let mut lines = vec![];
    for para in text.split('\n') {
        let breaks: Vec<usize> = segmenter.segment_str(para).collect();
        let mut start = 0;
        // The width of the pieces on the line so far, trailing spaces included.
        let mut used = 0.0;
        for w in breaks.windows(2) {
            let (a, b) = (w[0], w[1]);
            let piece = &para[a..b];
            let bare = width(piece.trim_end(), style);
            if a > start && used + bare > max {
                lines.push(para[start..a].trim_end().to_string());
                (start, used) = (a, 0.0);
            }
            if a == start && bare > max {
                // A word wider than a line on its own: it goes alone, cut by characters.
                lines.extend(cut_word(piece.trim_end(), style, max));
                (start, used) = (b, 0.0);
                continue;
            }
            used += if piece.trim_end().len() == piece.len() {
                bare
            } else {
                width(piece, style)
            };
        }
        if start < para.len() || para.is_empty() {
            lines.push(para[start..].trim_end().to_string());
        }
    }
    lines
}

/// A word that can't fit a line on its own, cut between grapheme clusters (a base letter and
/// its marks stay together). Each cluster is measured once, so a long word costs linear time.
fn cut_word(word: &str, style: Style, max: f32) -> Vec<String> {
    let clusters: Vec<usize> = icu_segmenter::GraphemeClusterSegmenter::new()
        .segment_str(word)
        .collect();
    let mut out = vec![];
    let (mut start, mut used) = (0, 0.0);
    for w in clusters.windows(2) {
        let cluster = width(&word[w[0]..w[1]], style);
        if w[0] > start && used + cluster > max {
            out.push(word[start..w[0]].to_string());
            (start, used) = (w[0], 0.0);
        }
        used += cluster;
    }
    if start < word.len() {
        out.push(word[start..].to_string());
    }
    out
}

/// Pages of laid-out items.
struct Layout {
    paper: Paper,
    width: f32,
    height: f32,
    margin: f32,
    body_bottom: f32,
    pages: Vec<Vec<Item>>,
    y: f32,
}

impl Layout {
    fn new(paper: Paper) -> Layout {
        let (width, height) = paper.size();
        let margin = paper.margin();
        // Room for the footer at the bottom of each page.
        let body_bottom = if height > 0.0 {
            height - margin - 18.0
        } else {
            f32::MAX
        };
        Layout {
            paper,
            width,
            height,
            margin,
            body_bottom,
            pages: vec![vec![]],
            y: margin,
        }
    }

    fn inner(&self) -> f32 {
        self.width - 2.0 * self.margin
    }

    fn new_page(&mut self) {
        self.pages.push(vec![]);
        self.y = self.margin;
    }

    /// Makes room for `h` points, on a new page if this one is full.
    fn room(&mut self, h: f32) {
        if self.y + h > self.body_bottom && self.y > self.margin + 0.5 {
            self.new_page();
        }
    }

    fn text(&mut self, x: f32, baseline: f32, text: &str, style: Style) {
        self.shaped(x, baseline, shape(text, style), style);
    }

    fn shaped(&mut self, x: f32, baseline: f32, shaped: Shaped, style: Style) {
        self.pages.last_mut().expect("a page").push(Item::Text {
            x,
            baseline,
            shaped,
            style,
        });
    }

    fn text_right(&mut self, right: f32, baseline: f32, text: &str, style: Style) {
        let shaped = shape(text, style);
        self.shaped(right - shaped.width, baseline, shaped, style);
    }

    fn rule(&mut self, x1: f32, x2: f32, y: f32, w: f32) {
        self.pages.last_mut().expect("a page").push(Item::Rule {
            x1,
            x2,
            y,
            width: w,
        });
    }

    fn paragraph(&mut self, text: &str, style: Style) {
        self.paragraph_in(text, style, self.inner());
    }

    /// A paragraph in the first `width` points of the line.
    fn paragraph_in(&mut self, text: &str, style: Style, width: f32) {
        let lh = style.line_height();
        for line in wrap(text, style, width) {
            self.room(lh);
            self.text(self.margin, self.y + style.size, &line, style);
            self.y += lh;
        }
    }

    fn block(&mut self, b: &Block) {
        let body = Style::new(self.paper.text());
        match b {
            Block::Header { name, lines, logo } => {
                let top = self.y;
                let mut text_w = self.inner();
                let mut logo_bottom = top;
                if let Some(image) = logo {
                    let roll = self.paper == Paper::Roll80;
                    // At most 16 mm high (12 on a roll) and 40% of the width (all of it).
                    let (max_w, max_h) = if roll {
                        (self.inner(), 12.0 * MM)
                    } else {
                        (self.inner() * 0.4, 16.0 * MM)
                    };
                    let scale = f32::min(max_w / image.width as f32, max_h / image.height as f32);
                    let (w, h) = (image.width as f32 * scale, image.height as f32 * scale);
                    let x = if roll {
                        self.margin
                    } else {
                        self.width - self.margin - w
                    };
                    self.pages.last_mut().expect("a page").push(Item::Image {
                        x,
                        top,
                        w,
                        h,
                        image: image.clone(),
                    });
                    if roll {
                        self.y += h + 6.0;
                    } else {
                        text_w -= w + 12.0;
                        logo_bottom = top + h;
                    }
                }
                self.paragraph_in(name, Style::new(body.size * 1.6).bold(), text_w);
                for l in lines {
                    self.paragraph_in(l, body, text_w);
                }
                self.y = self.y.max(logo_bottom);
                self.y += 4.0;
                self.rule(self.margin, self.width - self.margin, self.y, 0.8);
                self.y += 10.0;
            }
            Block::Title(t) => {
                self.room(body.size * 3.0);
                self.paragraph(t, Style::new(body.size * 1.3).bold());
                self.y += 4.0;
            }
            Block::Paragraph(t) => {
                self.paragraph(t, body);
                self.y += body.size * 0.5;
            }
            Block::Styled { text, style } => {
                self.paragraph(text, *style);
                self.y += style.size * 0.3;
            }
            Block::KeyValues(rows) => {
                let label_w = rows
                    .iter()
                    .map(|(k, _)| width(k, body.bold()))
                    .fold(0.0, f32::max)
                    .min(self.inner() * 0.4)
                    + 8.0;
                let lh = body.line_height();
                for (k, v) in rows {
                    let lines = wrap(v, body, self.inner() - label_w);
                    // A value kept whole on one page, unless it is taller than a page: then it
                    // goes on line by line.
                    self.room(lh * lines.len().max(1) as f32);
                    self.text(self.margin, self.y + body.size, k, body.bold());
                    for l in &lines {
                        self.room(lh);
                        self.text(self.margin + label_w, self.y + body.size, l, body);
                        self.y += lh;
                    }
                    if lines.is_empty() {
                        self.y += lh;
                    }
                }
                self.y += body.size * 0.5;
            }
            Block::Table { columns, rows } => self.table(columns, rows, body),
            Block::Totals(rows) => {
                let right = self.width - self.margin;
                for (i, (k, v)) in rows.iter().enumerate() {
                    let style = if i + 1 == rows.len() {
                        body.bold()
                    } else {
                        body
                    };
                    self.room(style.line_height());
                    self.text_right(right - self.inner() * 0.25, self.y + style.size, k, style);
                    self.text_right(right, self.y + style.size, v, style);
                    self.y += style.line_height();
                }
                self.y += body.size * 0.5;
            }
            Block::Rule { label } => {
                self.room(body.line_height() * 2.5);
                self.y += body.line_height() * 1.5;
                self.rule(self.margin, self.margin + self.inner() * 0.6, self.y, 0.5);
                if let Some(l) = label {
                    self.text(
                        self.margin,
                        self.y + body.size + 2.0,
                        l,
                        Style::new(body.size * 0.85),
                    );
                    self.y += body.line_height();
                }
                self.y += 4.0;
            }
            Block::Space(pt) => self.y += pt,
        }
    }

    /// A table: the header on every page it reaches, no row cut in half, money right-aligned.
    fn table(&mut self, columns: &[Column], rows: &[Vec<String>], body: Style) {
        let pad = 3.0;
        let widths = column_widths(columns, rows, body, self.inner(), pad);
        let cells = |row: &[String], style: Style| -> Vec<Vec<String>> {
            row.iter()
                .zip(&widths)
                .map(|(t, w)| wrap(t, style, w - 2.0 * pad))
                .collect()
        };
        let head_style = body.bold();
        let head = cells(
            &columns.iter().map(|c| c.title.clone()).collect::<Vec<_>>(),
            head_style,
        );
        let height = |cells: &[Vec<String>], style: Style| {
            cells.iter().map(Vec::len).max().unwrap_or(1) as f32 * style.line_height() + pad
        };
        let head_h = height(&head, head_style);
        let draw_row = |l: &mut Layout, cells: &[Vec<String>], style: Style, h: f32| {
            let mut x = l.margin;
            for ((lines, w), col) in cells.iter().zip(&widths).zip(columns) {
                for (i, line) in lines.iter().enumerate() {
                    let baseline = l.y + style.size + i as f32 * style.line_height();
                    match col.align {
                        Align::Left => l.text(x + pad, baseline, line, style),
                        Align::Right => l.text_right(x + w - pad, baseline, line, style),
                    }
                }
                x += w;
            }
            l.y += h;
        };
        let draw_head = |l: &mut Layout| {
            draw_row(l, &head, head_style, head_h);
            l.rule(l.margin, l.width - l.margin, l.y - pad / 2.0, 0.6);
        };
        self.room(head_h + body.line_height() * 2.0);
        draw_head(self);
        // Below the header on a new page: a row taller than that is split line by line, the
        // only row ever cut (its cells continue under the header on the next page).
        let fresh = self.body_bottom - self.margin - head_h;
        let lh = body.line_height();
        for row in rows {
            let mut c = cells(row, body);
            loop {
                let h = height(&c, body);
                if self.y + h <= self.body_bottom {
                    draw_row(self, &c, body, h);
                    break;
                }
                if h > fresh {
                    let fit = ((self.body_bottom - self.y - pad) / lh).floor().max(0.0) as usize;
                    // Right under the header, at least one line goes, so the row moves on.
                    let at_top = self.y <= self.margin + head_h + 0.5;
                    let fit = if at_top { fit.max(1) } else { fit };
                    if fit > 0 {
                        let rest: Vec<Vec<String>> = c
                            .iter_mut()
                            .map(|lines| lines.split_off(fit.min(lines.len())))
                            .collect();
                        draw_row(self, &c, body, fit as f32 * lh + pad);
                        c = rest;
                    }
                }
                self.new_page();
                draw_head(self);
            }
        }
        self.y += body.size * 0.8;
    }
}

/// The widest piece of `text` that can't be broken, in points.
fn longest_word(text: &str, style: Style) -> f32 {
    let segmenter = icu_segmenter::LineSegmenter::new_auto(Default::default());
    let breaks: Vec<usize> = segmenter.segment_str(text).collect();
    breaks
        .windows(2)
        .map(|w| width(text[w[0]..w[1]].trim_end(), style))
        .fold(0.0, f32::max)
}

/// Column widths in points: the shares scaled to `inner`, then widened where a header word or
/// a right-aligned value (an amount, a count) would not fit whole, taking the room from the
/// columns that have some to spare. Text columns wrap instead.
fn column_widths(
    columns: &[Column],
    rows: &[Vec<String>],
    body: Style,
    inner: f32,
    pad: f32,
) -> Vec<f32> {
    let total: f32 = columns.iter().map(|c| c.width).sum::<f32>().max(0.001);
    let mut widths: Vec<f32> = columns.iter().map(|c| c.width / total * inner).collect();
    let need: Vec<f32> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut w = longest_word(&c.title, body.bold());
            if c.align == Align::Right {
                for row in rows {
                    if let Some(cell) = row.get(i) {
                        w = w.max(longest_word(cell, body));
                    }
                }
            }
            w + 2.0 * pad + 0.5
        })
        .collect();
    let short: f32 = widths
        .iter()
        .zip(&need)
        .map(|(w, n)| (n - w).max(0.0))
        .sum();
    let spare: f32 = widths
        .iter()
        .zip(&need)
        .map(|(w, n)| (w - n).max(0.0))
        .sum();
    if short > 0.0 && spare >= short {
        for (w, n) in widths.iter_mut().zip(&need) {
            if *w < *n {
                *w = *n;
            } else {
                *w -= (*w - n) / spare * short;
            }
        }
    }
    widths
}

/// Lays out and writes `doc` as a PDF.
pub fn render(doc: &Document) -> Result<Vec<u8>> {
    render_fonts(doc, true)
}

/// The same PDF with whole fonts embedded, so the glyph ids in it are the font's own (as
/// HarfBuzz gives them); subsetting renumbers glyphs. For checking the shaping, not for paper.
pub fn render_whole_fonts(doc: &Document) -> Result<Vec<u8>> {
    render_fonts(doc, false)
}

fn render_fonts(doc: &Document, subset: bool) -> Result<Vec<u8>> {
    let mut l = Layout::new(doc.paper);
    for b in &doc.blocks {
        l.block(b);
    }
    let roll = doc.paper == Paper::Roll80;
    if roll {
        // A roll is as long as its content plus the footer.
        l.height = l.y + 24.0;
        l.body_bottom = l.y;
    }
    let m = l.pages.len();
    let foot = Style::new(doc.paper.text() * 0.8);
    let (page_w, page_h) = (l.width, l.height);
    for n in 1..=m {
        let label = doc
            .page_label
            .replace("{n}", &n.to_string())
            .replace("{m}", &m.to_string());
        let baseline = page_h - l.margin.min(12.0 * MM) + 4.0;
        let footer_items = {
            let mut f = Layout {
                pages: vec![vec![]],
                ..Layout::new(doc.paper)
            };
            f.width = page_w;
            f.rule(l.margin, page_w - l.margin, baseline - foot.size - 3.0, 0.4);
            if !doc.footer.is_empty() {
                let fits = wrap(&doc.footer, foot, l.inner() * 0.7)
                    .into_iter()
                    .next()
                    .unwrap_or_default();
                f.text(l.margin, baseline, &fits, foot);
            }
            f.text_right(page_w - l.margin, baseline, &label, foot);
            f.pages.pop().unwrap_or_default()
        };
        l.pages[n - 1].extend(footer_items);
    }
    write_pdf(&doc.title, page_w, page_h, l.pages, subset)
}

fn write_pdf(
    title: &str,
    page_w: f32,
    page_h: f32,
    pages: Vec<Vec<Item>>,
    subset: bool,
) -> Result<Vec<u8>> {
    let mut pdf = PdfDocument::new(title);
    let mut handles = std::collections::BTreeMap::new();
    for face in Face::ALL {
        let used = pages.iter().flatten().any(|i| matches!(i, Item::Text { shaped, .. } if shaped.glyphs.iter().any(|g| g.face == face)));
        if used {
            handles.insert(face, PdfFontHandle::External(pdf.add_font(parsed(face)?)));
        }
    }
    let mut images: Vec<(*const Image, printpdf::XObjectId)> = vec![];
    let mut out = vec![];
    for items in pages {
        let mut ops = vec![
            Op::SetOutlineColor {
                col: Color::Rgb(Rgb::new(0.25, 0.25, 0.25, None)),
            },
            Op::SetFillColor {
                col: Color::Rgb(Rgb::new(0.0, 0.0, 0.0, None)),
            },
        ];
        for item in items {
            match item {
                Item::Rule { x1, x2, y, width } => {
                    ops.push(Op::SetOutlineThickness { pt: Pt(width) });
                    ops.push(Op::DrawLine {
                        line: Line {
                            points: vec![
                                LinePoint {
                                    p: Point {
                                        x: Pt(x1),
                                        y: Pt(page_h - y),
                                    },
                                    bezier: false,
                                },
                                LinePoint {
                                    p: Point {
                                        x: Pt(x2),
                                        y: Pt(page_h - y),
                                    },
                                    bezier: false,
                                },
                            ],
                            is_closed: false,
                        },
                    });
                }
                Item::Text {
                    x,
                    baseline,
                    shaped,
                    style,
                } => text_ops(&mut ops, &handles, x, page_h - baseline, &shaped, style),
                Item::Image {
                    x,
                    top,
                    w,
                    h,
                    image,
                } => {
                    let key = Arc::as_ptr(&image);
                    let id = match images.iter().find(|(k, _)| *k == key) {
                        Some((_, id)) => id.clone(),
                        None => {
                            let id = pdf.add_image(&RawImage {
                                pixels: RawImageData::U8(image.rgb.clone()),
                                width: image.width,
                                height: image.height,
                                data_format: RawImageFormat::RGB8,
                                tag: vec![],
                            });
                            images.push((key, id.clone()));
                            id
                        }
                    };
                    // At 72 dpi a pixel is a point; the scale makes it the printed size.
                    ops.push(Op::UseXobject {
                        id,
                        transform: XObjectTransform {
                            translate_x: Some(Pt(x)),
                            translate_y: Some(Pt(page_h - top - h)),
                            scale_x: Some(w / image.width as f32),
                            scale_y: Some(h / image.height as f32),
                            dpi: Some(72.0),
                            ..Default::default()
                        },
                    });
                }
            }
        }
        out.push(PdfPage::new(Mm(page_w / MM), Mm(page_h / MM), ops));
    }
    let opts = PdfSaveOptions {
        subset_fonts: subset,
        ..Default::default()
    };
    let mut warnings = vec![];
    Ok(pdf.with_pages(out).save(&opts, &mut warnings))
}

/// printpdf's parse of an embedded face, made once per process.
fn parsed(face: Face) -> Result<&'static ParsedFont> {
    static PARSED: [OnceLock<Option<ParsedFont>>; Face::ALL.len()] =
        [const { OnceLock::new() }; Face::ALL.len()];
    PARSED[face as usize]
        .get_or_init(|| ParsedFont::from_bytes(face.bytes(), 0, &mut Vec::new()))
        .as_ref()
        .ok_or_else(|| Error::internal("embedded font failed to parse"))
}

/// The glyphs of one shaped line, each at its own position (x and y offsets applied), inside
/// marked content whose `ActualText` is the text they draw.
fn text_ops(
    ops: &mut Vec<Op>,
    fonts: &std::collections::BTreeMap<Face, PdfFontHandle>,
    x: f32,
    y: f32,
    shaped: &Shaped,
    style: Style,
) {
    for (first, count, text) in &shaped.spans {
        let glyphs = &shaped.glyphs[*first..first + count];
        let Some(face) = glyphs.first().map(|g| g.face) else {
            continue;
        };
        let Some(font) = fonts.get(&face) else {
            continue;
        };
        ops.push(Op::StartTextSection);
        ops.push(Op::BeginMarkedContentWithProperties {
            tag: "Span".into(),
            properties: DictItem::Dict {
                map: [("ActualText".to_string(), actual_text(text))].into(),
            },
        });
        ops.push(Op::SetFont {
            font: font.clone(),
            size: Pt(style.size),
        });
        for g in glyphs {
            ops.push(Op::SetTextMatrix {
                matrix: TextMatrix::Raw([1.0, 0.0, 0.0, 1.0, x + g.x, y + g.y]),
            });
            ops.push(Op::ShowText {
                items: vec![TextItem::GlyphIds(vec![printpdf::Codepoint {
                    gid: g.gid,
                    offset: 0.0,
                    cid: None,
                }])],
            });
        }
        ops.push(Op::EndMarkedContentWithProperties);
        ops.push(Op::EndTextSection);
    }
}

/// A PDF text string in UTF-16BE with its byte order mark, as `ActualText` wants.
fn actual_text(text: &str) -> DictItem {
    let mut data = vec![0xFE, 0xFF];
    for u in text.encode_utf16() {
        data.extend(u.to_be_bytes());
    }
    DictItem::String {
        data,
        literal: false,
    }
}

/// The header every paper of the clinic starts with: its logo, name, address and phone.
pub fn clinic_header(conn: &rusqlite::Connection) -> Result<Block> {
    let clinic = crate::settings::clinic(conn)?;
    let logo = crate::settings::logo::pixels(conn)?.map(|p| Arc::new(Image::from_rgb(p)));
    Ok(Block::Header {
        name: clinic.name.clone(),
        lines: [&clinic.address, &clinic.phone]
            .into_iter()
            .filter(|l| !l.is_empty())
            .cloned()
            .collect(),
        logo,
    })
}

/// "Page 1 of 3" etc. in the clinic's language, and other words every paper uses.
pub fn page_label(lang: crate::settings::Language) -> &'static str {
    use crate::settings::Language;
    match lang {
        Language::En => "Page {n} of {m}",
        Language::Ru => "Стр. {n} из {m}",
        Language::Th => "หน้า {n} จาก {m}",
    }
}

/// An amount in minor units as printed: thousands grouped, `digits` decimals ("1,250.00").
/// The currency's digits come from `settings::minor_digits`.
pub fn money(minor: i64, digits: u8) -> String {
    let unit = 10i64.pow(digits as u32);
    let mut major = (minor / unit).unsigned_abs().to_string();
    let mut i = major.len();
    while i > 3 {
        i -= 3;
        major.insert(i, ',');
    }
    let sign = if minor < 0 { "-" } else { "" };
    match digits {
        0 => format!("{sign}{major}"),
        d => format!(
            "{sign}{major}.{:0width$}",
            (minor % unit).unsigned_abs(),
            width = d as usize
        ),
    }
}

/// A time as printed on papers, in the clinic's zone.
pub fn printed_at(now: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    now.with_timezone(&tz)
        .format("%Y-%m-%d %H:%M %Z")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_groups_thousands_and_keeps_the_currency_digits() {
        assert_eq!(money(0, 2), "0.00");
        assert_eq!(money(5, 2), "0.05");
        assert_eq!(money(125_000, 2), "1,250.00");
        assert_eq!(money(123_456_789, 2), "1,234,567.89");
        assert_eq!(money(-1_050, 2), "-10.50");
        assert_eq!(money(1_500_000, 0), "1,500,000");
        assert_eq!(money(1_234_567, 3), "1,234.567");
        assert_eq!(money(i64::MIN, 2), "-92,233,720,368,547,758.08");
    }

    #[test]
    fn lines_break_between_words_and_never_inside_a_thai_word() {
        let style = Style::new(10.0);
        let text = "ผู้ป่วยมาตรวจตามนัดที่โรงพยาบาลกรุงเทพมหานครทุกเดือน";
        let lines = wrap(text, style, 80.0);
        assert!(lines.len() > 1, "{lines:?}");
        assert_eq!(lines.concat(), text, "nothing lost or added");
        for l in &lines {
            assert!(
                width(l, style) <= 80.0 + 0.01 || l.chars().count() < 8,
                "{l} is too wide"
            );
        }
        // Every break is one the dictionary allows.
        let allowed: Vec<usize> = icu_segmenter::LineSegmenter::new_auto(Default::default())
            .segment_str(text)
            .collect();
        let mut at = 0;
        for l in &lines[..lines.len() - 1] {
            at += l.len();
            assert!(allowed.contains(&at), "a break inside a word after {l:?}");
        }
        let en = wrap("Take one tablet twice a day after meals", style, 90.0);
        assert!(
            en.len() > 1 && en.iter().all(|l| !l.starts_with(' ')),
            "{en:?}"
        );
    }
}
