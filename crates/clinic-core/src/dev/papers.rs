//! Sample papers for the printing tests and the print bench: an invoice and a long report
//! mixing Thai, Cyrillic and Latin text, as a Thai clinic with foreign patients prints them.
//! (Billing builds the real invoice from its own records; these only exercise the engine.)

use std::sync::Arc;

use crate::print::{Align, Block, Column, Document, Image, Paper};

const ITEMS: &[(&str, i64)] = &[
    (
        "Consultation, general practitioner / ตรวจรักษาโดยแพทย์ทั่วไป",
        50_000,
    ),
    (
        "Complete blood count (CBC) / ตรวจความสมบูรณ์ของเม็ดเลือด",
        28_000,
    ),
    ("Paracetamol 500 mg × 20 / พาราเซตามอล", 6_000),
    ("Amoxicillin 500 mg × 21 / อะม็อกซีซิลลิน", 18_900),
    ("Wound dressing / ทำแผล", 25_000),
    ("Chest X-ray / เอกซเรย์ทรวงอก", 60_000),
    ("Приём терапевта, повторный / ตรวจติดตามอาการ", 40_000),
    ("Vitamin C 1000 mg × 30 / วิตามินซี", 24_000),
    ("ORS sachets × 10 / ผงเกลือแร่", 5_000),
    ("Medical certificate / ใบรับรองแพทย์", 10_000),
];

/// Thai baht: two minor digits.
fn money(minor: i64) -> String {
    crate::print::money(minor, 2)
}

/// A made-up clinic logo, 360 x 120 pixels: a teal cross in a rounded square and three bars
/// for a wordmark, as a PNG (what an admin would upload).
pub fn logo_png() -> Vec<u8> {
    let (teal, white) = (image::Rgb([0u8, 128, 128]), image::Rgb([255u8, 255, 255]));
    let img = image::RgbImage::from_fn(360, 120, |x, y| {
        let (x, y) = (x as i32, y as i32);
        let in_square = (10..110).contains(&x) && (10..110).contains(&y) && {
            // Rounded corners: outside a radius of 16 from each corner's centre.
            let cx = x.clamp(26, 93);
            let cy = y.clamp(26, 93);
            (x - cx).pow(2) + (y - cy).pow(2) <= 16 * 16
        };
        let cross = ((48..72).contains(&x) && (25..95).contains(&y))
            || ((25..95).contains(&x) && (48..72).contains(&y));
        let bars = (130..350).contains(&x)
            && [(22, 44), (56, 70), (82, 96)]
                .iter()
                .any(|&(a, b)| (a..b).contains(&y) && x < 350 - (a - 22) * 2);
        match (in_square, cross, bars) {
            (true, false, _) | (_, _, true) => teal,
            _ => white,
        }
    });
    let mut png = vec![];
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("a PNG in memory");
    png
}

fn header() -> Block {
    static LOGO: std::sync::OnceLock<Arc<Image>> = std::sync::OnceLock::new();
    let logo = LOGO.get_or_init(|| {
        let pixels = image::load_from_memory(&logo_png()).expect("the demo logo");
        Arc::new(Image::from_rgb(pixels.into_rgb8()))
    });
    Block::Header {
        logo: Some(logo.clone()),
        name: "คลินิกเวชกรรมริมน้ำ Riverside Family Clinic".into(),
        lines: vec![
            "99/1 ถนนสุขุมวิท แขวงคลองเตย เขตคลองเตย กรุงเทพมหานคร 10110".into(),
            "Tel. 02-123-4567 · Tax ID 0105559000000".into(),
        ],
    }
}

/// An invoice of `lines` items (they repeat after ten) for a patient with a Thai name.
pub fn invoice(number: u32, lines: usize, paper: Paper) -> Document {
    let mut rows = vec![];
    let mut total = 0;
    for i in 0..lines {
        let (what, price) = ITEMS[i % ITEMS.len()];
        let qty = 1 + (i as i64 % 3);
        total += price * qty;
        rows.push(vec![
            (i + 1).to_string(),
            what.to_string(),
            qty.to_string(),
            money(price),
            money(price * qty),
        ]);
    }
    let vat = total * 7 / 107;
    Document {
        title: format!("Invoice INV-2026-{number:06}"),
        paper,
        blocks: vec![
            header(),
            Block::Title(format!("ใบแจ้งหนี้ / Invoice INV-2026-{number:06}")),
            Block::KeyValues(vec![
                (
                    "Patient / ผู้ป่วย".into(),
                    "นางสาวปิ่นแก้ว ศรีสุข (Иванова Ольга)".into(),
                ),
                ("HN".into(), "HN-0042817".into()),
                ("Date / วันที่".into(), "2026-11-23 14:05 ICT".into()),
                ("Doctor / แพทย์".into(), "นพ. สมชาย ใจดี".into()),
            ]),
            Block::Table {
                columns: vec![
                    Column::new("#", 0.6, Align::Right),
                    Column::new("Item / รายการ", 6.0, Align::Left),
                    Column::new("Qty", 0.9, Align::Right),
                    Column::new("Price", 1.6, Align::Right),
                    Column::new("Amount / จำนวนเงิน", 2.0, Align::Right),
                ],
                rows,
            },
            Block::Totals(vec![
                ("VAT 7% (included)".into(), money(vat)),
                ("Total / รวมทั้งสิ้น THB".into(), money(total)),
            ]),
            Block::Paragraph(
                "ขอบคุณที่ใช้บริการ กรุณาเก็บใบเสร็จนี้ไว้เป็นหลักฐาน · Спасибо! · Thank you.".into(),
            ),
            Block::Rule {
                label: Some("Cashier / ผู้รับเงิน".into()),
            },
        ],
        footer: "Riverside Family Clinic · printed 2026-11-23 14:05 ICT".into(),
        page_label: "Page {n} of {m}".into(),
    }
}

/// The note of every tenth report row: long enough to wrap over several lines of its cell.
pub const REPORT_NOTE: &str =
    "Referred to cardiology, ECG booked / ส่งต่อแผนกโรคหัวใจ นัดตรวจคลื่นไฟฟ้าหัวใจ";

/// A report table of `rows` rows (visits by day and doctor), long enough to run over pages.
/// Every tenth row has a note that wraps, so a row can be several lines high.
pub fn report(rows: usize, paper: Paper) -> Document {
    const DOCTORS: &[&str] = &[
        "นพ. สมชาย ใจดี",
        "พญ. ปิ่นแก้ว ศรีสุข",
        "Dr. Anna Petrova / Анна Петрова",
        "Dr. James O'Neil",
    ];
    let rows = (0..rows)
        .map(|i| {
            let visits = 7 + (i * 13) % 31;
            vec![
                format!("R{:04}", i + 1),
                format!("2026-{:02}-{:02}", 1 + (i / 28) % 12, 1 + i % 28),
                DOCTORS[i % DOCTORS.len()].to_string(),
                visits.to_string(),
                money(visits as i64 * 61_250),
                if i % 10 == 9 { REPORT_NOTE } else { "" }.to_string(),
            ]
        })
        .collect();
    Document {
        title: "Visits by doctor".into(),
        paper,
        blocks: vec![
            header(),
            Block::Title("รายงานการตรวจรักษา / Visits by doctor".into()),
            Block::Table {
                columns: vec![
                    Column::new("Row", 1.0, Align::Left),
                    Column::new("Date / วันที่", 1.6, Align::Left),
                    Column::new("Doctor / แพทย์", 3.4, Align::Left),
                    Column::new("Visits", 0.9, Align::Right),
                    Column::new("Revenue THB", 2.0, Align::Right),
                    Column::new("Note / หมายเหตุ", 2.8, Align::Left),
                ],
                rows,
            },
        ],
        footer: "Riverside Family Clinic · Visits by doctor".into(),
        page_label: "Page {n} of {m}".into(),
    }
}
