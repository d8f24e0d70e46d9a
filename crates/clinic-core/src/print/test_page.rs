//! The printer test page: what an admin prints after choosing the paper size or a logo, to see
//! the clinic's header, the three scripts, a table and the margins on the real printer.

use chrono::{DateTime, Utc};
use rusqlite::Connection;

use super::{
    clinic_header, money, page_label, printed_at, render, Align, Block, Column, Document, Paper,
};
use crate::error::Result;
use crate::settings::{self, Language};
use crate::store::Device;

struct Texts {
    title: &'static str,
    paper: &'static str,
    printed: &'static str,
    computer: &'static str,
    check: &'static str,
    item: &'static str,
    qty: &'static str,
    amount: &'static str,
    total: &'static str,
    signature: &'static str,
    papers: [&'static str; 3],
}

fn texts(lang: Language) -> Texts {
    match lang {
        Language::En => Texts {
            title: "Printer test page",
            paper: "Paper",
            printed: "Printed",
            computer: "Computer",
            check: "Check that the logo, the Thai and Cyrillic lines below, the right-aligned amounts and the page number all print whole, with no line cut at the edges.",
            item: "Item",
            qty: "Qty",
            amount: "Amount",
            total: "Total",
            signature: "Checked by (name, signature)",
            papers: ["A4", "Letter", "80 mm receipt roll"],
        },
        Language::Ru => Texts {
            title: "Пробная страница принтера",
            paper: "Бумага",
            printed: "Напечатано",
            computer: "Компьютер",
            check: "Проверьте, что логотип, строки на тайском и русском ниже, суммы по правому краю и номер страницы напечатаны целиком и ни одна строка не обрезана по краям.",
            item: "Позиция",
            qty: "Кол-во",
            amount: "Сумма",
            total: "Итого",
            signature: "Проверил (ФИО, подпись)",
            papers: ["A4", "Letter", "Чековая лента 80 мм"],
        },
        Language::Th => Texts {
            title: "หน้าทดสอบเครื่องพิมพ์",
            paper: "กระดาษ",
            printed: "พิมพ์เมื่อ",
            computer: "คอมพิวเตอร์",
            check: "ตรวจดูว่าโลโก้ ข้อความภาษาไทยและภาษารัสเซียด้านล่าง จำนวนเงินชิดขวา และเลขหน้า พิมพ์ออกมาครบ ไม่มีบรรทัดใดถูกตัดที่ขอบกระดาษ",
            item: "รายการ",
            qty: "จำนวน",
            amount: "จำนวนเงิน",
            total: "รวม",
            signature: "ผู้ตรวจสอบ (ชื่อ ลายมือชื่อ)",
            papers: ["A4", "Letter", "กระดาษม้วนใบเสร็จ 80 มม."],
        },
    }
}

/// Lines in each script, the same on every clinic's test page.
pub const SAMPLES: [&str; 3] = [
    "ผู้ป่วย นางสาวปิ่นแก้ว ศรีสุข รับยาที่ห้องจ่ายยา ชั้น ๑",
    "Пациентка Ольга Иванова, приём в 14:30, кабинет № 3",
    "Patient Anna Smith, paracetamol 500 mg, 1 tablet 3 times a day",
];

pub fn test_page(conn: &Connection, device: &Device, now: DateTime<Utc>) -> Result<Vec<u8>> {
    let clinic = settings::clinic(conn)?;
    let lang = clinic.default_language;
    let t = texts(lang);
    let digits = settings::minor_digits(&clinic.currency).unwrap_or(2);
    let paper_name = t.papers[match clinic.paper {
        Paper::A4 => 0,
        Paper::Letter => 1,
        Paper::Roll80 => 2,
    }];
    let rows = [
        ("ตรวจรักษา / Consultation / Приём", 1, 50_000),
        ("Paracetamol 500 mg", 20, 300),
    ];
    let total: i64 = rows.iter().map(|(_, q, p)| q * p).sum();
    let mut blocks = vec![
        clinic_header(conn)?,
        Block::Title(t.title.to_string()),
        Block::KeyValues(vec![
            (t.paper.to_string(), paper_name.to_string()),
            (t.printed.to_string(), printed_at(now, clinic.tz())),
            (t.computer.to_string(), device.code.clone()),
        ]),
        Block::Paragraph(t.check.to_string()),
    ];
    blocks.extend(SAMPLES.iter().map(|s| Block::Paragraph(s.to_string())));
    blocks.push(Block::Table {
        columns: vec![
            Column::new(t.item, 5.0, Align::Left),
            Column::new(t.qty, 1.0, Align::Right),
            Column::new(t.amount, 2.0, Align::Right),
        ],
        rows: rows
            .iter()
            .map(|(what, q, p)| vec![what.to_string(), q.to_string(), money(q * p, digits)])
            .collect(),
    });
    blocks.push(Block::Totals(vec![(
        format!("{} {}", t.total, clinic.currency),
        money(total, digits),
    )]));
    blocks.push(Block::Rule {
        label: Some(t.signature.to_string()),
    });
    render(&Document {
        title: t.title.to_string(),
        paper: clinic.paper,
        blocks,
        footer: clinic.name.clone(),
        page_label: page_label(lang).to_string(),
    })
}
