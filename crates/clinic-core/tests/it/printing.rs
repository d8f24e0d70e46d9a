//! The document engine, checked from outside: HarfBuzz's own `hb-shape` for the glyphs,
//! `pdftotext` for the text layer, `pdftoppm` against `pango-view` for how it looks.
//! Every PDF and PNG is kept in `artifacts/print/`.

use clinic_core::print::Output;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use clinic_core::dev::papers;
use clinic_core::print::shape::Style;
use clinic_core::print::{render, render_whole_fonts, Block, Document, Paper};

/// Where the test PDFs and PNGs are kept (`artifacts/print/`, ignored by git).
pub fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../artifacts/print");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn fonts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../assets/fonts")
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (make deps installs it)"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Writes `pdf` to the artifacts and returns its path.
fn keep(pdf: &[u8], name: &str) -> PathBuf {
    let path = artifacts().join(format!("{name}.pdf"));
    std::fs::write(&path, pdf).unwrap();
    path
}

pub fn pdftotext(pdf: &[u8], name: &str, layout: bool) -> String {
    let path = keep(pdf, name);
    let mut cmd = Command::new("pdftotext");
    if layout {
        cmd.arg("-layout");
    }
    String::from_utf8(run(cmd.arg(&path).arg("-"))).unwrap()
}

fn doc(blocks: Vec<Block>) -> Document {
    Document {
        title: "test".into(),
        paper: Paper::A4,
        blocks,
        footer: "Riverside Family Clinic".into(),
        page_label: "Page {n} of {m}".into(),
    }
}

/// The issue's samples, then names whose tone marks sit over upper vowels (mai ek over
/// sara i, mai tho over mai han-akat, mai ek over sara ue), where the font moves marks up
/// and down: the place where dropping y offsets shows.
const THAI_SAMPLES: &[&str] = &[
    "น้ำ",
    "ที่",
    "ผู้ป่วย",
    "กรุงเทพมหานคร",
    "สมเด็จพระเจ้าอยู่หัว",
    "นางสาวปิ่นแก้ว ศรีสุข",
    "นายปั้น ชื่นใจ",
    "ชื่อ",
    "สุขุมวิท",
];

/// The opening sentences of Thai Wikipedia's article on Bangkok (กรุงเทพมหานคร), as outside
/// test data: long enough to wrap over several lines.
const THAI_WIKIPEDIA: &str = "กรุงเทพมหานครเป็นเมืองหลวงและนครที่มีประชากรมากที่สุดของประเทศไทย \
เป็นศูนย์กลางการปกครอง การศึกษา การคมนาคมขนส่ง การเงินการธนาคาร การพาณิชย์ การสื่อสาร \
และความเจริญของประเทศ ตั้งอยู่บนสามเหลี่ยมปากแม่น้ำเจ้าพระยา มีแม่น้ำเจ้าพระยาไหลผ่าน";

#[test]
fn pdftotext_gives_back_thai_cyrillic_and_latin_exactly() {
    let mut blocks: Vec<Block> = THAI_SAMPLES
        .iter()
        .map(|s| Block::Paragraph(s.to_string()))
        .collect();
    blocks.push(Block::Paragraph("Иван Ёлкин, ул. Щорса 14".into()));
    blocks.push(Block::Paragraph(
        "Invoice for สมชาย ใจดี (Иван) — 1,250.00 THB".into(),
    ));
    blocks.push(Block::Paragraph(THAI_WIKIPEDIA.into()));
    let pdf = render(&doc(blocks)).unwrap();
    let text = pdftotext(&pdf, "round-trip", false);
    for s in THAI_SAMPLES.iter().chain(&[
        "Иван Ёлкин, ул. Щорса 14",
        "Invoice for สมชาย ใจดี (Иван) — 1,250.00 THB",
    ]) {
        assert!(
            text.lines().any(|l| l.trim() == *s),
            "{s:?} not given back; pdftotext says:\n{text}"
        );
    }
    // The wrapped paragraph comes back whole, its lines joined where the engine broke them.
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let start = lines
        .iter()
        .position(|l| l.starts_with("กรุงเทพมหานครเป็น"))
        .expect("the paragraph");
    let mut joined = String::new();
    for l in &lines[start..] {
        if l.is_empty() {
            break;
        }
        joined.push_str(l);
        if joined.len() >= THAI_WIKIPEDIA.len() {
            break;
        }
        joined.push(' ');
    }
    assert!(lines.len() > start + 1, "the paragraph wraps");
    assert_eq!(
        joined.replace(' ', ""),
        THAI_WIKIPEDIA.replace(' ', ""),
        "the wrapped paragraph lost or changed text"
    );
}

// ---- Reading the PDF back -------------------------------------------------------------------

/// A glyph as the PDF draws it.
#[derive(Debug, Clone)]
struct PdfGlyph {
    page: u32,
    /// Which marked span (`BDC` .. `EMC`) it is in, counted through the document.
    span: usize,
    /// The `ActualText` of the marked span it is in.
    text: String,
    /// The font's name without the subset tag ("NotoSansThai-Regular").
    font: String,
    gid: u16,
    size: f32,
    /// The glyph origin on the page, in points.
    x: f32,
    y: f32,
}

fn number(o: &lopdf::Object) -> f32 {
    o.as_float().unwrap_or_else(|_| panic!("a number: {o:?}"))
}

/// The `/W` array of a CID font: glyph widths in thousandths of an em.
fn cid_widths(doc: &lopdf::Document, font: &lopdf::Dictionary) -> (BTreeMap<u16, f32>, f32) {
    let resolve = |o: &lopdf::Object| -> lopdf::Object {
        match o {
            lopdf::Object::Reference(id) => doc.get_object(*id).unwrap().clone(),
            o => o.clone(),
        }
    };
    let descendants = resolve(font.get(b"DescendantFonts").unwrap());
    let cid = resolve(&descendants.as_array().unwrap()[0]);
    let cid = cid.as_dict().unwrap();
    let dw = cid.get(b"DW").map(number).unwrap_or(1000.0);
    let mut widths = BTreeMap::new();
    if let Ok(w) = cid.get(b"W") {
        let w = resolve(w);
        let w = w.as_array().unwrap();
        let mut i = 0;
        while i < w.len() {
            let first = number(&w[i]) as u16;
            match &w[i + 1] {
                lopdf::Object::Array(list) => {
                    for (k, v) in list.iter().enumerate() {
                        widths.insert(first + k as u16, number(v));
                    }
                    i += 2;
                }
                last => {
                    for c in first..=number(last) as u16 {
                        widths.insert(c, number(&w[i + 2]));
                    }
                    i += 3;
                }
            }
        }
    }
    (widths, dw)
}

fn utf16_text(bytes: &[u8]) -> String {
    assert_eq!(&bytes[..2], &[0xFE, 0xFF], "ActualText in UTF-16BE");
    let units: Vec<u16> = bytes[2..]
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units).unwrap()
}

/// Every glyph the PDF shows, where the viewer puts it: text matrix, then each glyph's `/W`
/// advance and the `TJ` adjustments, as PDF 32000-1 §9.4.4 has a viewer move the pen.
fn pdf_glyphs(pdf: &[u8]) -> Vec<PdfGlyph> {
    let doc = lopdf::Document::load_mem(pdf).unwrap();
    let mut out = vec![];
    let mut span_id = 0;
    for (page, id) in doc.get_pages() {
        let fonts: BTreeMap<Vec<u8>, (String, BTreeMap<u16, f32>, f32)> = doc
            .get_page_fonts(id)
            .unwrap()
            .into_iter()
            .map(|(name, dict)| {
                let base =
                    String::from_utf8_lossy(dict.get(b"BaseFont").unwrap().as_name().unwrap())
                        .to_string();
                let base = base
                    .split_once('+')
                    .map_or(base.clone(), |(_, b)| b.to_string());
                let (w, dw) = cid_widths(&doc, dict);
                (name, (base, w, dw))
            })
            .collect();
        let content = lopdf::content::Content::decode(&doc.get_page_content(id)).unwrap();
        let mut span = String::new();
        let mut font: Option<&(String, BTreeMap<u16, f32>, f32)> = None;
        let mut size = 0.0;
        let (mut x, mut y) = (0.0f32, 0.0f32);
        for op in &content.operations {
            let args = &op.operands;
            match op.operator.as_str() {
                "BDC" => {
                    span_id += 1;
                    if let Ok(d) = args[1].as_dict() {
                        if let Ok(t) = d.get(b"ActualText") {
                            span = utf16_text(t.as_str().unwrap());
                        }
                    }
                }
                "EMC" => span.clear(),
                "Tf" => {
                    font = Some(&fonts[args[0].as_name().unwrap()]);
                    size = number(&args[1]);
                }
                "Tm" => {
                    let m: Vec<f32> = args.iter().map(number).collect();
                    assert_eq!(&m[..4], &[1.0, 0.0, 0.0, 1.0], "no scaled or turned text");
                    (x, y) = (m[4], m[5]);
                }
                "Td" | "TD" | "T*" | "'" | "\"" | "Ts" | "Tc" | "Tw" | "Tz" => {
                    panic!("{} is not expected in the engine's output", op.operator)
                }
                "Tj" | "TJ" => {
                    let items = match &args[0] {
                        lopdf::Object::Array(a) => a.clone(),
                        s => vec![s.clone()],
                    };
                    let (name, widths, dw) = font.expect("a font before text");
                    for item in &items {
                        match item {
                            lopdf::Object::String(bytes, _) => {
                                for code in bytes.chunks(2) {
                                    let gid = u16::from_be_bytes([code[0], code[1]]);
                                    out.push(PdfGlyph {
                                        page,
                                        span: span_id,
                                        text: span.clone(),
                                        font: name.clone(),
                                        gid,
                                        size,
                                        x,
                                        y,
                                    });
                                    x += widths.get(&gid).copied().unwrap_or(*dw) / 1000.0 * size;
                                }
                            }
                            n => x -= number(n) / 1000.0 * size,
                        }
                    }
                }
                _ => {}
            }
        }
    }
    out
}

// ---- HarfBuzz --------------------------------------------------------------------------------

#[derive(Debug, serde::Deserialize)]
struct HbGlyph {
    g: u16,
    dx: i32,
    dy: i32,
    ax: i32,
}

fn hb_shape(font: &Path, text: &str) -> Vec<HbGlyph> {
    let json = run(Command::new("hb-shape")
        .arg("--no-glyph-names")
        .arg("--output-format=json")
        .arg(font)
        .arg(text));
    serde_json::from_slice(&json).unwrap()
}

/// Every Thai span of the PDF against `hb-shape` on the same font and text: the same glyph
/// ids, and each glyph where HarfBuzz's advances and x/y offsets put it, within one unit.
/// Returns how many glyphs had a vertical offset (the trap the issue names).
fn compare_with_harfbuzz(glyphs: &[PdfGlyph]) -> (usize, usize, Vec<String>) {
    let mut spans: Vec<Vec<&PdfGlyph>> = vec![];
    for g in glyphs.iter().filter(|g| g.font.starts_with("NotoSansThai")) {
        match spans.last_mut() {
            Some(last) if last[0].span == g.span => last.push(g),
            _ => spans.push(vec![g]),
        }
    }
    let mut with_dy = 0;
    let mut total = 0;
    let mut texts = vec![];
    for span in spans {
        let file = fonts_dir().join(format!("{}.ttf", span[0].font));
        let hb = hb_shape(&file, &span[0].text);
        assert_eq!(
            span.iter().map(|g| g.gid).collect::<Vec<_>>(),
            hb.iter().map(|g| g.g).collect::<Vec<_>>(),
            "glyph ids of {:?} differ from hb-shape's",
            span[0].text
        );
        // Noto Sans Thai has 1000 units per em: one unit is size/1000 points.
        let unit = span[0].size / 1000.0;
        let (x0, y0) = (
            span[0].x - hb[0].dx as f32 * unit,
            span[0].y - hb[0].dy as f32 * unit,
        );
        let mut pen = 0;
        for (g, h) in span.iter().zip(&hb) {
            let x = (g.x - x0) / unit;
            let y = (g.y - y0) / unit;
            assert!(
                (x - (pen + h.dx) as f32).abs() <= 1.0 && (y - h.dy as f32).abs() <= 1.0,
                "{:?}: glyph {} at ({x:.2}, {y:.2}) units, hb-shape says ({}, {})",
                span[0].text,
                h.g,
                pen + h.dx,
                h.dy
            );
            pen += h.ax;
            with_dy += usize::from(h.dy != 0);
            total += 1;
        }
        texts.push(span[0].text.clone());
    }
    (total, with_dy, texts)
}

#[test]
fn thai_glyphs_in_the_pdf_are_the_ones_harfbuzz_gives_where_it_puts_them() {
    let mut blocks: Vec<Block> = THAI_SAMPLES
        .iter()
        .map(|s| Block::Paragraph(s.to_string()))
        .collect();
    blocks.push(Block::Paragraph(THAI_WIKIPEDIA.into()));
    // Bold, large, and mixed with Latin on one line.
    blocks.push(Block::Title("ใบสั่งยา ผู้ป่วย นางสาวปิ่นแก้ว".into()));
    blocks.push(Block::Styled {
        text: "ปั้น ชื่อ น้ำ".into(),
        style: Style::new(31.0),
    });
    blocks.push(Block::Paragraph(
        "Patient: นางสาวปิ่นแก้ว ศรีสุข, HN-0042".into(),
    ));
    let document = doc(blocks);
    // Whole fonts, so the ids in the PDF are the font's own; then the shipped (subset) PDF
    // puts the same number of glyphs in the same places.
    let whole = render_whole_fonts(&document).unwrap();
    keep(&whole, "harfbuzz-whole-fonts");
    let glyphs = pdf_glyphs(&whole);
    let (total, with_dy, texts) = compare_with_harfbuzz(&glyphs);
    for s in THAI_SAMPLES {
        assert!(
            texts.iter().any(|t| t == s),
            "{s:?} was not compared: {texts:?}"
        );
    }
    assert!(
        texts.iter().any(|t| t.starts_with("ใบสั่งยา")),
        "bold compared"
    );
    assert!(
        texts
            .iter()
            .filter(|t| THAI_WIKIPEDIA.contains(t.trim()))
            .count()
            >= 2,
        "the wrapped paragraph's lines compared: {texts:?}"
    );
    assert!(total > 250, "{total} glyphs compared");
    assert!(
        with_dy >= 3,
        "only {with_dy} glyphs with a vertical offset: the samples must exercise them"
    );

    let subset = render(&document).unwrap();
    keep(&subset, "harfbuzz-subset");
    let shipped = pdf_glyphs(&subset);
    assert_eq!(shipped.len(), glyphs.len());
    for (a, b) in shipped.iter().zip(&glyphs) {
        assert!(
            a.page == b.page
                && (a.x - b.x).abs() < 0.01
                && (a.y - b.y).abs() < 0.01
                && a.text == b.text,
            "{a:?} vs {b:?}"
        );
    }
    assert!(
        subset.len() * 3 < whole.len(),
        "subsetting shrinks the fonts"
    );
}

// ---- Pixels: our PDF through poppler against pango's own rendering ---------------------------

/// A grayscale image, 0 black to 255 white.
struct Gray {
    w: usize,
    h: usize,
    px: Vec<u8>,
}

impl Gray {
    fn load(path: &Path) -> Gray {
        let decoder =
            png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        let channels = info.color_type.samples();
        assert_eq!(info.bit_depth, png::BitDepth::Eight, "{path:?}");
        let px = buf[..info.buffer_size()]
            .chunks(channels)
            .map(|p| match channels {
                1 | 2 => p[0],
                _ => ((p[0] as u32 + p[1] as u32 + p[2] as u32) / 3) as u8,
            })
            .collect();
        Gray {
            w: info.width as usize,
            h: info.height as usize,
            px,
        }
    }

    fn save(&self, path: &Path) {
        let file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
        let mut enc = png::Encoder::new(file, self.w as u32, self.h as u32);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        enc.write_header()
            .unwrap()
            .write_image_data(&self.px)
            .unwrap();
    }

    fn ink(&self, x: usize, y: usize) -> bool {
        self.px[y * self.w + x] < 128
    }

    fn crop(&self, x0: usize, y0: usize, x1: usize, y1: usize) -> Gray {
        let mut px = Vec::with_capacity((x1 - x0) * (y1 - y0));
        for y in y0..y1 {
            px.extend_from_slice(&self.px[y * self.w + x0..y * self.w + x1]);
        }
        Gray {
            w: x1 - x0,
            h: y1 - y0,
            px,
        }
    }

    /// The image cut to the box around its ink.
    fn trim(&self) -> Gray {
        let (mut x0, mut y0, mut x1, mut y1) = (self.w, self.h, 0, 0);
        for y in 0..self.h {
            for x in 0..self.w {
                if self.ink(x, y) {
                    (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x + 1), y1.max(y + 1));
                }
            }
        }
        assert!(x1 > x0, "no ink");
        self.crop(x0, y0, x1, y1)
    }

    /// Bands of rows with ink, top to bottom (the lines of a page): rows of ink less than
    /// `gap` blank rows apart are one band (a mark floats above its letter).
    fn bands(&self, gap: usize) -> Vec<Gray> {
        let inked: Vec<usize> = (0..self.h)
            .filter(|&y| (0..self.w).any(|x| self.ink(x, y)))
            .collect();
        let mut out = vec![];
        let mut start = 0;
        for i in 1..=inked.len() {
            if i == inked.len() || inked[i] - inked[i - 1] > gap {
                out.push(self.crop(0, inked[start], self.w, inked[i - 1] + 1).trim());
                start = i;
            }
        }
        out
    }

    /// How much of each image's ink the other has within a pixel, the smaller of the two;
    /// the images are laid over each other at their ink boxes' top-left corners.
    fn likeness(&self, other: &Gray) -> f32 {
        let covered = |a: &Gray, b: &Gray| {
            let (mut ink, mut hit) = (0, 0);
            for y in 0..a.h {
                for x in 0..a.w {
                    if !a.ink(x, y) {
                        continue;
                    }
                    ink += 1;
                    let near = (y.saturating_sub(1)..=y + 1).any(|yy| {
                        (x.saturating_sub(1)..=x + 1)
                            .any(|xx| xx < b.w && yy < b.h && b.ink(xx, yy))
                    });
                    hit += usize::from(near);
                }
            }
            hit as f32 / ink as f32
        };
        covered(self, other).min(covered(other, self))
    }

    /// A grid of images on white, `gap` pixels apart: each row's images side by side.
    fn grid(rows: &[Vec<&Gray>], gap: usize) -> Gray {
        let cols = rows.iter().map(Vec::len).max().unwrap();
        let col_w: Vec<usize> = (0..cols)
            .map(|c| {
                rows.iter()
                    .filter_map(|r| r.get(c))
                    .map(|g| g.w)
                    .max()
                    .unwrap()
            })
            .collect();
        let row_h: Vec<usize> = rows
            .iter()
            .map(|r| r.iter().map(|g| g.h).max().unwrap())
            .collect();
        let w = col_w.iter().map(|c| c + gap).sum::<usize>() + gap;
        let h = row_h.iter().map(|r| r + gap).sum::<usize>() + gap;
        let mut px = vec![255; w * h];
        let mut top = gap;
        for (r, row) in rows.iter().enumerate() {
            let mut left = gap;
            for (c, g) in row.iter().enumerate() {
                for y in 0..g.h {
                    let at = (top + y) * w + left;
                    px[at..at + g.w].copy_from_slice(&g.px[y * g.w..(y + 1) * g.w]);
                }
                left += col_w[c] + gap;
            }
            top += row_h[r] + gap;
        }
        Gray { w, h, px }
    }
}

/// Page 1 of `pdf` at `dpi`, gray.
fn pdftoppm(pdf: &Path, dpi: u32) -> Gray {
    let prefix = pdf.with_extension("");
    run(Command::new("pdftoppm")
        .args(["-png", "-gray", "-singlefile", "-f", "1", "-l", "1", "-r"])
        .arg(dpi.to_string())
        .arg(pdf)
        .arg(&prefix));
    Gray::load(&prefix.with_extension("png"))
}

/// `text` set by pango (HarfBuzz shaping, cairo drawing) in the shipped font file only.
fn pango_view(text: &str, size: f32, dpi: u32, out: &Path) -> Gray {
    let conf = artifacts().join("fonts.conf");
    std::fs::write(
        &conf,
        format!(
            "<?xml version=\"1.0\"?><!DOCTYPE fontconfig SYSTEM \"fonts.dtd\"><fontconfig>\
             <dir>{}</dir><cachedir>{}</cachedir></fontconfig>",
            fonts_dir().display(),
            artifacts().join("fontconfig-cache").display()
        ),
    )
    .unwrap();
    run(Command::new("pango-view")
        .env("FONTCONFIG_FILE", &conf)
        .args([
            "-q",
            "--hinting=none",
            "--hint-metrics=off",
            "--subpixel-positions",
            "--margin=8",
        ])
        .arg(format!("--dpi={dpi}"))
        .arg(format!("--font=Noto Sans Thai {size}"))
        .arg(format!("--text={text}"))
        .arg("-o")
        .arg(out));
    Gray::load(out)
}

/// The same lines without shaping: each character's glyph from the font's character map,
/// one after another, as printpdf's plain text does (what the recovery sheet had before).
fn unshaped_pdf(lines: &[&str], size: f32) -> Vec<u8> {
    use printpdf::*;
    let mut pdf = PdfDocument::new("unshaped");
    let bytes = std::fs::read(fonts_dir().join("NotoSansThai-Regular.ttf")).unwrap();
    let font = pdf.add_font(&ParsedFont::from_bytes(&bytes, 0, &mut vec![]).unwrap());
    let mut ops = vec![Op::StartTextSection];
    for (i, l) in lines.iter().enumerate() {
        ops.push(Op::SetFont {
            font: PdfFontHandle::External(font.clone()),
            size: Pt(size),
        });
        ops.push(Op::SetTextMatrix {
            matrix: TextMatrix::Translate(Pt(50.0), Pt(800.0 - i as f32 * size * 2.2)),
        });
        ops.push(Op::ShowText {
            items: vec![TextItem::Text(l.to_string())],
        });
    }
    ops.push(Op::EndTextSection);
    let page = PdfPage::new(Mm(210.0), Mm(297.0), ops);
    pdf.with_pages(vec![page])
        .save(&PdfSaveOptions::default(), &mut vec![])
}

#[test]
fn a_thai_page_looks_like_pango_sets_it_and_unshaped_text_does_not() {
    const SIZE: f32 = 28.0;
    const DPI: u32 = 96;
    let lines = [
        "น้ำ ที่ ผู้ป่วย",
        "กรุงเทพมหานคร",
        "สมเด็จพระเจ้าอยู่หัว",
        "นางสาวปิ่นแก้ว ศรีสุข",
        "นายปั้น ชื่นใจ",
    ];
    let mut blocks = vec![];
    for l in lines {
        blocks.push(Block::Styled {
            text: l.into(),
            style: Style::new(SIZE),
        });
        blocks.push(Block::Space(SIZE));
    }
    let ours = pdftoppm(&keep(&render(&doc(blocks)).unwrap(), "visual-thai"), DPI);
    let bands = ours.bands(8);
    let naive = pdftoppm(&keep(&unshaped_pdf(&lines, SIZE), "visual-unshaped"), DPI).bands(8);
    assert!(
        bands.len() > lines.len() && naive.len() == lines.len(),
        "{} and {} bands",
        bands.len(),
        naive.len()
    );
    let mut side_by_side = vec![];
    let mut worst_ours = 1.0f32;
    let mut worst_naive = 1.0f32;
    let mut report = String::new();
    let references: Vec<Gray> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| pango_view(l, SIZE, DPI, &artifacts().join(format!("pango-{i}.png"))).trim())
        .collect();
    for (i, reference) in references.iter().enumerate() {
        let (a, n) = (&bands[i], &naive[i]);
        let (ours_score, naive_score) = (a.likeness(reference), n.likeness(reference));
        report += &format!(
            "{}: ours {}x{} {:.3}, unshaped {:.3}, pango {}x{}\n",
            lines[i], a.w, a.h, ours_score, naive_score, reference.w, reference.h
        );
        assert!(
            a.w.abs_diff(reference.w) <= 2 && a.h.abs_diff(reference.h) <= 2,
            "{report}"
        );
        worst_ours = worst_ours.min(ours_score);
        worst_naive = worst_naive.min(naive_score);
        side_by_side.push(vec![a, reference, n]);
    }
    std::fs::write(artifacts().join("visual-thai.txt"), &report).unwrap();
    Gray::grid(&side_by_side, 16).save(&artifacts().join("visual-thai-ours-pango-unshaped.png"));
    eprintln!("{report}");
    assert!(worst_ours >= 0.95, "{report}");
    assert!(
        worst_naive < worst_ours - 0.1,
        "the comparison must tell: {report}"
    );
}

// ---- Layout ---------------------------------------------------------------------------------

fn page_sizes(pdf: &[u8]) -> Vec<(f32, f32)> {
    let doc = lopdf::Document::load_mem(pdf).unwrap();
    doc.get_pages()
        .values()
        .map(|id| {
            let page = doc.get_dictionary(*id).unwrap();
            let b: Vec<f32> = page
                .get(b"MediaBox")
                .unwrap()
                .as_array()
                .unwrap()
                .iter()
                .map(number)
                .collect();
            (b[2] - b[0], b[3] - b[1])
        })
        .collect()
}

#[test]
fn a_120_row_table_breaks_over_pages_with_its_header_repeated_and_no_row_split() {
    let pdf = render(&papers::report(120, Paper::A4)).unwrap();
    let text = pdftotext(&pdf, "table-120-rows", true);
    let pages: Vec<&str> = text
        .split('\x0c')
        .filter(|p| !p.trim().is_empty())
        .collect();
    assert!(pages.len() >= 3, "{} pages", pages.len());
    let m = pages.len();
    for (n, page) in pages.iter().enumerate() {
        let lines: Vec<&str> = page.lines().filter(|l| !l.trim().is_empty()).collect();
        let header = lines
            .iter()
            .position(|l| l.contains("Row") && l.contains("Visits") && l.contains("Revenue THB"))
            .unwrap_or_else(|| panic!("page {} has no table header:\n{page}", n + 1));
        let first_row = lines
            .iter()
            .position(|l| l.trim_start().starts_with('R') && l.contains("2026-"));
        assert!(
            first_row.is_some_and(|r| r > header),
            "header before rows on page {}",
            n + 1
        );
        assert!(
            lines
                .last()
                .unwrap()
                .contains(&format!("Page {} of {m}", n + 1)),
            "footer on page {}",
            n + 1
        );
    }
    // Every row is on exactly one page, whole on one line: its number, date, doctor, visits
    // and revenue; a row with a wrapped note has all of the note on that same page.
    for i in 0..120 {
        let id = format!("R{:04}", i + 1);
        let hits: Vec<(usize, &str)> = pages
            .iter()
            .enumerate()
            .flat_map(|(p, page)| page.lines().map(move |l| (p, l)))
            .filter(|(_, l)| l.split_whitespace().next() == Some(&id))
            .collect();
        assert_eq!(hits.len(), 1, "{id} appears {} times", hits.len());
        let (p, line) = hits[0];
        let visits = 7 + (i * 13) % 31;
        let revenue = clinic_core::print::money(visits as i64 * 61_250, 2);
        let date = format!("2026-{:02}-{:02}", 1 + (i / 28) % 12, 1 + i % 28);
        for part in [&date, &format!(" {visits} "), &revenue] {
            assert!(
                line.contains(part.as_str()),
                "{id}: {part:?} not on its line: {line}"
            );
        }
        if i % 10 == 9 {
            // The note: the rest of the row's line, then the lines under it up to the next row.
            let page = pages[p];
            let mut note = line[line.find(&revenue).unwrap() + revenue.len()..].to_string();
            for l in page[page.find(line).unwrap()..].lines().skip(1) {
                if l.trim().is_empty() || l.trim_start().starts_with('R') {
                    break;
                }
                note.push_str(l);
            }
            let squeeze = |s: &str| s.split_whitespace().collect::<String>();
            assert_eq!(
                squeeze(&note),
                squeeze(papers::REPORT_NOTE),
                "{id}'s note is not whole on page {}",
                p + 1
            );
        }
    }
}

#[test]
fn papers_come_in_a4_letter_and_an_80mm_roll() {
    let a4 = render(&papers::invoice(1, 10, Paper::A4)).unwrap();
    let letter = render(&papers::invoice(1, 10, Paper::Letter)).unwrap();
    let roll = render(&papers::invoice(1, 10, Paper::Roll80)).unwrap();
    let near =
        |(w, h): (f32, f32), (ew, eh): (f32, f32)| (w - ew).abs() < 0.5 && (h - eh).abs() < 0.5;
    assert!(
        near(page_sizes(&a4)[0], (595.3, 841.9)),
        "{:?}",
        page_sizes(&a4)
    );
    assert!(
        near(page_sizes(&letter)[0], (612.0, 792.0)),
        "{:?}",
        page_sizes(&letter)
    );
    // The roll is one page 80 mm wide, as long as the invoice.
    let rolls = page_sizes(&roll);
    assert_eq!(rolls.len(), 1);
    assert!(
        (rolls[0].0 - 226.8).abs() < 0.5 && rolls[0].1 > 400.0,
        "{rolls:?}"
    );
    assert!(
        pdf_glyphs(&roll).iter().all(|g| g.gid != 0),
        "no boxes on the roll"
    );
    // Amounts are never cut, even in the roll's narrow columns.
    let layout = pdftotext(&roll, "invoice-roll80-layout", true);
    for amount in ["500.00", "1,800.00", "4,859.00"] {
        assert!(
            layout.contains(amount),
            "{amount} cut on the roll:\n{layout}"
        );
    }
    // Everything is on the roll too, the long item names wrapped into the narrow column.
    let text = pdftotext(&roll, "invoice-roll80", false).replace(['\n', ' '], "");
    for s in [
        "ใบแจ้งหนี้",
        "นางสาวปิ่นแก้วศรีสุข",
        "Иванова",
        "Приёмтерапевта",
        "รวมทั้งสิ้น",
    ] {
        assert!(text.contains(s), "{s} missing from the roll:\n{text}");
    }
}

#[test]
fn a_one_page_invoice_in_thai_cyrillic_and_latin_is_under_60_kb() {
    let pdf = render(&papers::invoice(7, 10, Paper::A4)).unwrap();
    keep(&pdf, "invoice-a4");
    assert_eq!(page_sizes(&pdf).len(), 1, "one page");
    assert!(pdf.len() < 60 * 1024, "{} bytes", pdf.len());
    let glyphs = pdf_glyphs(&pdf);
    let notdef: Vec<&PdfGlyph> = glyphs.iter().filter(|g| g.gid == 0).collect();
    assert!(notdef.is_empty(), "boxes instead of glyphs: {notdef:?}");
    let fonts: Vec<String> = glyphs.into_iter().map(|g| g.font).collect();
    for face in [
        "DejaVuSans",
        "DejaVuSans-Bold",
        "NotoSansThai-Regular",
        "NotoSansThai-Bold",
    ] {
        assert!(fonts.iter().any(|f| f == face), "{face} not used");
    }
}

#[test]
fn the_recovery_sheet_prints_in_the_clinics_language_on_its_paper() {
    use crate::support::{admin_core, new_clinic};
    use clinic_core::settings::Language;
    let c = new_clinic();
    let core = admin_core(&c);
    let cases = [
        (
            Language::En,
            Paper::Letter,
            "ClinicDesk recovery key",
            "Keep this sheet in a safe, away from the computer.",
        ),
        (
            Language::Ru,
            Paper::A4,
            "Ключ восстановления ClinicDesk",
            "Храните лист в сейфе, отдельно от компьютера.",
        ),
        (
            Language::Th,
            Paper::A4,
            "กุญแจกู้คืน ClinicDesk",
            "เก็บแผ่นนี้ไว้ในตู้เซฟ แยกจากคอมพิวเตอร์ ห้ามถ่ายรูปหรือส่งต่อ",
        ),
        (
            Language::Th,
            Paper::Roll80,
            "กุญแจกู้คืน ClinicDesk",
            "ผู้เก็บรักษา (ชื่อ ลายมือชื่อ)",
        ),
    ];
    for (lang, paper, title, line) in cases {
        let mut s = core.settings_get().unwrap();
        s.clinic.default_language = lang;
        s.clinic.paper = paper;
        core.settings_update(s).unwrap();
        let pdf = core
            .recovery_sheet_pdf(Output::Save, &c.recovery_key)
            .unwrap();
        let name = format!("recovery-{lang:?}-{paper:?}");
        let text = pdftotext(&pdf, &name, false);
        assert!(
            text.lines().any(|l| l.trim() == title),
            "{name}: no title {title:?}:\n{text}"
        );
        let squeeze = |s: &str| s.split_whitespace().collect::<String>();
        assert!(
            squeeze(&text).contains(&squeeze(line)),
            "{name}: {line:?} missing:\n{text}"
        );
        // The key, in the monospaced face, in two lines of groups.
        let key_groups: Vec<&str> = c.recovery_key.split('-').collect();
        assert!(
            key_groups.iter().all(|g| text.contains(g)),
            "{name}: the key:\n{text}"
        );
        assert!(text.contains("Riverside Family Clinic") && text.contains("12 Sukhumvit Rd"));
        let sizes = page_sizes(&pdf);
        assert_eq!(sizes.len(), 1, "{name}: one page");
        let width = match paper {
            Paper::A4 => 595.3,
            Paper::Letter => 612.0,
            Paper::Roll80 => 226.8,
        };
        assert!((sizes[0].0 - width).abs() < 0.5, "{name}: {sizes:?}");
    }
}

/// How many pictures a PDF holds.
fn images(pdf: &[u8]) -> usize {
    let doc = lopdf::Document::load_mem(pdf).unwrap();
    doc.objects
        .values()
        .filter(|o| {
            o.as_stream().is_ok_and(|s| {
                s.dict.get(b"Subtype").ok() == Some(&lopdf::Object::Name(b"Image".to_vec()))
            })
        })
        .count()
}

#[test]
fn a_logo_edited_in_the_database_is_left_off_the_paper_not_decoded_unbounded() {
    use crate::support::{admin_core, new_clinic, with_db};
    use base64::Engine;
    let c = new_clinic();
    let core = admin_core(&c);
    let b64 = base64::engine::general_purpose::STANDARD.encode(papers::logo_png());
    let logo = core.clinic_logo_set(b64).unwrap();
    assert_eq!((logo.width, logo.height), (360, 120));
    assert_eq!(images(&core.test_page_pdf(Output::Save).unwrap()), 1);

    // Someone with the key writes a PNG claiming 30000 x 30000 pixels into the row, and
    // then one that is not a PNG at all: papers still print, without the logo.
    let mut forged = papers::logo_png();
    forged[16..20].copy_from_slice(&30000u32.to_be_bytes());
    forged[20..24].copy_from_slice(&30000u32.to_be_bytes());
    for blob in [forged, b"not a picture".to_vec()] {
        with_db(&core, |db| {
            db.conn()
                .execute("UPDATE clinic_logo SET png = ?1", [&blob])
                .map(drop)
                .map_err(Into::into)
        })
        .unwrap();
        let pdf = core.test_page_pdf(Output::Print).unwrap();
        assert_eq!(images(&pdf), 0);
        let sheet = core
            .recovery_sheet_pdf(Output::Save, &c.recovery_key)
            .unwrap();
        assert_eq!(images(&sheet), 0);
        assert!(
            pdftotext(&sheet, "recovery-forged-logo", false).contains("Riverside Family Clinic")
        );
    }
    // Making the sheet is in the audit trail, as the recovery key, with where it went.
    let made: Vec<String> = with_db(&core, |db| {
        let mut st = db
            .conn()
            .prepare("SELECT actor_id, coalesce(after, before, '') FROM audit_log WHERE action = 'recovery_sheet' ORDER BY seq")?;
        let rows = st
            .query_map([], |r| Ok(format!("{} {}", r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    })
    .unwrap();
    assert_eq!(made.len(), 2, "{made:?}");
    assert!(
        made.iter()
            .all(|m| m.starts_with("recovery-key ") && m.contains(r#""output":"save""#)),
        "{made:?}"
    );
}

#[test]
fn a_row_or_value_taller_than_a_page_goes_on_over_pages_with_nothing_lost() {
    use clinic_core::print::{Align, Column};
    let words = |tag: &str, n: usize| -> String {
        (0..n)
            .map(|i| format!("{tag}{i:04}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let (cell, value) = (words("c", 1500), words("v", 1500));
    let pdf = render(&doc(vec![
        Block::Table {
            columns: vec![
                Column::new("Item", 3.0, Align::Left),
                Column::new("Amount", 1.0, Align::Right),
            ],
            rows: vec![
                vec!["first".into(), "1.00".into()],
                vec![cell, "2.00".into()],
                vec!["last".into(), "3.00".into()],
            ],
        },
        Block::KeyValues(vec![("Notes".into(), value)]),
    ]))
    .unwrap();
    let text = pdftotext(&pdf, "taller-than-a-page", false);
    let found: Vec<&str> = text.split_whitespace().collect();
    for tag in ["c", "v"] {
        for i in 0..1500 {
            let w = format!("{tag}{i:04}");
            assert_eq!(
                found.iter().filter(|f| **f == w).count(),
                1,
                "{w} is not on the paper exactly once"
            );
        }
    }
    let pages = page_sizes(&pdf);
    assert!(pages.len() >= 4, "{} pages", pages.len());
    let height = pages[0].1;
    for g in pdf_glyphs(&pdf) {
        assert!(
            g.y > 10.0 && g.y < height - 10.0,
            "a glyph off the page at y = {}",
            g.y
        );
    }
    // The table's header comes back on the pages the tall row goes on to.
    let with_header = text.split('\x0c').filter(|p| p.contains("Amount")).count();
    assert!(with_header >= 3, "header on {with_header} pages");
}

#[test]
fn a_word_of_thousands_of_characters_is_cut_into_lines_that_fit() {
    use clinic_core::print::wrap;
    let style = Style::new(10.0);
    // Letters, then thousands of zero-width joiners (cut character by character, each cut
    // measured the whole line again: quadratic), then Thai with its marks.
    let word: String = "W".repeat(80) + &"\u{2060}".repeat(5000) + &"ปั้น".repeat(300);
    let lines = wrap(&word, style, 200.0);
    assert!(lines.len() > 10);
    assert_eq!(lines.concat(), word, "nothing lost or added");
    for l in &lines {
        assert!(clinic_core::print::shape::width(l, style) <= 200.5, "{l}");
        // A Thai mark never starts a line.
        assert!(!l.starts_with(['\u{0E31}', '\u{0E49}']), "{l}");
    }
}
