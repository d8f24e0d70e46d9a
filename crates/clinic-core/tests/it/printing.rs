//! The document engine, checked from outside: HarfBuzz's own `hb-shape` for the glyphs,
//! `pdftotext` for the text layer, `pdftoppm` and `pango-view` for how it looks.

use std::path::PathBuf;
use std::process::Command;

use clinic_core::print::shape::{shape, Face, Style};
use clinic_core::print::{render, Align, Block, Column, Document, Paper};

/// Where the test PDFs and PNGs are kept (`artifacts/print/`, ignored by git).
pub fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../artifacts/print");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn pdftotext(pdf: &[u8], name: &str, layout: bool) -> String {
    let path = artifacts().join(format!("{name}.pdf"));
    std::fs::write(&path, pdf).unwrap();
    let mut cmd = Command::new("pdftotext");
    if layout {
        cmd.arg("-layout");
    }
    let out = cmd
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
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

const THAI_SAMPLES: &[&str] = &[
    "น้ำ",
    "ที่",
    "ผู้ป่วย",
    "กรุงเทพมหานคร",
    "สมเด็จพระเจ้าอยู่หัว",
    "นางสาวปิ่นแก้ว ศรีสุข",
    "สุขุมวิท",
];

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
}
