//! The cashier's papers: the invoice (A4 or Letter), the receipt (the 80 mm roll, or the
//! clinic's paper) and the daily close with the audit trail's head. Words in English, Russian
//! or Thai; amounts as the currency prints them.

use chrono::{DateTime, Utc};
use rusqlite::Connection;

use super::close;
use super::invoices::{self, Invoice};
use super::payments::{self, Method};
use crate::error::Result;
use crate::print::{
    clinic_header, money, page_label, printed_at, render, Align, Block, Column, Document, Paper,
};
use crate::settings::{self, Language};

struct Texts {
    invoice: &'static str,
    receipt: &'static str,
    close: &'static str,
    number: &'static str,
    date: &'static str,
    patient: &'static str,
    record: &'static str,
    item: &'static str,
    qty: &'static str,
    price: &'static str,
    discount: &'static str,
    tax: &'static str,
    amount: &'static str,
    net: &'static str,
    total: &'static str,
    invoice_discount: &'static str,
    paid: &'static str,
    balance: &'static str,
    insurer: &'static str,
    patient_part: &'static str,
    method: &'static str,
    tendered: &'static str,
    change: &'static str,
    refund: &'static str,
    void: &'static str,
    draft: &'static str,
    expected: &'static str,
    counted: &'static str,
    difference: &'static str,
    note: &'static str,
    audit_head: &'static str,
    payments: &'static str,
    cashier: &'static str,
    methods: [&'static str; 5],
}

fn texts(lang: Language) -> Texts {
    match lang {
        Language::En => Texts {
            invoice: "Invoice",
            receipt: "Receipt",
            close: "Daily close",
            number: "No.",
            date: "Date",
            patient: "Patient",
            record: "Record no.",
            item: "Item",
            qty: "Qty",
            price: "Price",
            discount: "Discount",
            tax: "Tax",
            amount: "Amount",
            net: "Before tax",
            total: "Total",
            invoice_discount: "Invoice discount",
            paid: "Paid",
            balance: "Balance due",
            insurer: "Insurer's part",
            patient_part: "Patient's part",
            method: "Method",
            tendered: "Tendered",
            change: "Change",
            refund: "Refund",
            void: "VOID",
            draft: "DRAFT: not issued",
            expected: "Cash expected",
            counted: "Cash counted",
            difference: "Difference",
            note: "Note",
            audit_head: "Audit trail head",
            payments: "Payments",
            cashier: "Cashier",
            methods: ["Cash", "Card", "Mobile / QR", "Bank transfer", "Insurance"],
        },
        Language::Ru => Texts {
            invoice: "Счёт",
            receipt: "Квитанция",
            close: "Закрытие дня",
            number: "№",
            date: "Дата",
            patient: "Пациент",
            record: "№ карты",
            item: "Наименование",
            qty: "Кол-во",
            price: "Цена",
            discount: "Скидка",
            tax: "Налог",
            amount: "Сумма",
            net: "Без налога",
            total: "Итого",
            invoice_discount: "Скидка на счёт",
            paid: "Оплачено",
            balance: "К оплате",
            insurer: "Доля страховой",
            patient_part: "Доля пациента",
            method: "Способ",
            tendered: "Получено",
            change: "Сдача",
            refund: "Возврат",
            void: "АННУЛИРОВАН",
            draft: "ЧЕРНОВИК: не выставлен",
            expected: "Ожидается наличных",
            counted: "Посчитано наличных",
            difference: "Разница",
            note: "Примечание",
            audit_head: "Голова журнала аудита",
            payments: "Платежи",
            cashier: "Кассир",
            methods: [
                "Наличные",
                "Карта",
                "Мобильный / QR",
                "Перевод",
                "Страховка",
            ],
        },
        Language::Th => Texts {
            invoice: "ใบแจ้งหนี้",
            receipt: "ใบเสร็จรับเงิน",
            close: "ปิดยอดประจำวัน",
            number: "เลขที่",
            date: "วันที่",
            patient: "ผู้ป่วย",
            record: "เลขที่เวชระเบียน",
            item: "รายการ",
            qty: "จำนวน",
            price: "ราคา",
            discount: "ส่วนลด",
            tax: "ภาษี",
            amount: "จำนวนเงิน",
            net: "ก่อนภาษี",
            total: "รวมทั้งสิ้น",
            invoice_discount: "ส่วนลดท้ายบิล",
            paid: "ชำระแล้ว",
            balance: "ยอดค้างชำระ",
            insurer: "ส่วนของประกัน",
            patient_part: "ส่วนของผู้ป่วย",
            method: "วิธีชำระ",
            tendered: "รับเงิน",
            change: "เงินทอน",
            refund: "คืนเงิน",
            void: "ยกเลิก",
            draft: "ฉบับร่าง ยังไม่ออกใบแจ้งหนี้",
            expected: "เงินสดที่ควรมี",
            counted: "เงินสดที่นับได้",
            difference: "ส่วนต่าง",
            note: "หมายเหตุ",
            audit_head: "หัวบันทึกตรวจสอบ",
            payments: "รายการชำระ",
            cashier: "แคชเชียร์",
            methods: ["เงินสด", "บัตร", "มือถือ / QR", "โอนเงิน", "ประกัน"],
        },
    }
}

fn method_name(t: &Texts, m: Method) -> &'static str {
    t.methods[Method::ALL.iter().position(|x| *x == m).unwrap_or(0)]
}

fn digits(currency: &str) -> u8 {
    settings::minor_digits(currency).unwrap_or(2)
}

fn amount(v: i64, currency: &str) -> String {
    format!("{} {currency}", money(v, digits(currency)))
}

/// The invoice's blocks after the clinic header: number, patient, lines, totals, payments.
fn invoice_blocks(inv: &Invoice, t: &Texts, tz: chrono_tz::Tz, now: DateTime<Utc>) -> Vec<Block> {
    let cur = inv.currency.as_str();
    let d = digits(cur);
    let mut blocks = vec![Block::Title(t.invoice.to_string())];
    match inv.status {
        invoices::InvoiceStatus::Draft => blocks.push(Block::Paragraph(t.draft.to_string())),
        invoices::InvoiceStatus::Void => {
            blocks.push(Block::Paragraph(format!("{}: {}", t.void, inv.void_reason)))
        }
        _ => {}
    }
    let when = inv
        .issued_at
        .as_deref()
        .and_then(crate::ids::parse_ts)
        .unwrap_or(now);
    blocks.push(Block::KeyValues(vec![
        (
            t.number.into(),
            inv.number.clone().unwrap_or_else(|| "—".into()),
        ),
        (t.date.into(), printed_at(when, tz)),
        (t.patient.into(), inv.patient_name.clone()),
        (t.record.into(), inv.mrn.clone()),
    ]));
    blocks.push(Block::Table {
        columns: vec![
            Column::new(t.item, 4.0, Align::Left),
            Column::new(t.qty, 0.8, Align::Right),
            Column::new(t.price, 1.4, Align::Right),
            Column::new(t.discount, 1.3, Align::Right),
            Column::new(t.tax, 1.2, Align::Right),
            Column::new(t.amount, 1.5, Align::Right),
        ],
        rows: inv
            .lines
            .iter()
            .map(|l| {
                let mut item = l.description.clone();
                if !l.discount_reason.is_empty() {
                    item = format!("{item} ({})", l.discount_reason);
                }
                vec![
                    item,
                    l.quantity.to_string(),
                    money(l.unit_price, d),
                    if l.discount > 0 {
                        money(l.discount, d)
                    } else {
                        String::new()
                    },
                    money(l.tax, d),
                    money(l.total, d),
                ]
            })
            .collect(),
    });
    let mut totals = vec![
        (t.net.to_string(), amount(inv.net, cur)),
        (t.tax.to_string(), amount(inv.tax, cur)),
    ];
    if inv.discount > 0 {
        totals.push((
            format!("{} ({})", t.invoice_discount, inv.discount_reason),
            amount(-inv.discount, cur),
        ));
    }
    totals.push((t.total.to_string(), amount(inv.total, cur)));
    if inv.insurer_part > 0 {
        totals.push((t.insurer.to_string(), amount(inv.insurer_part, cur)));
        totals.push((t.patient_part.to_string(), amount(inv.patient_part, cur)));
    }
    totals.push((t.paid.to_string(), amount(inv.paid, cur)));
    totals.push((t.balance.to_string(), amount(inv.balance, cur)));
    blocks.push(Block::Totals(totals));
    if !inv.payments.is_empty() {
        blocks.push(Block::Table {
            columns: vec![
                Column::new(t.payments, 3.0, Align::Left),
                Column::new(t.method, 2.0, Align::Left),
                Column::new(t.amount, 1.5, Align::Right),
            ],
            rows: inv
                .payments
                .iter()
                .map(|p| {
                    vec![
                        format!("{} {}", p.receipt_no, p.day),
                        method_name(t, p.method).to_string(),
                        money(p.amount, d),
                    ]
                })
                .collect(),
        });
    }
    blocks
}

fn document(
    conn: &Connection,
    title: String,
    paper: Paper,
    mut blocks: Vec<Block>,
    lang: Language,
) -> Result<Vec<u8>> {
    let clinic = settings::clinic(conn)?;
    blocks.insert(0, clinic_header(conn)?);
    render(&Document {
        title,
        paper,
        blocks,
        footer: clinic.name.clone(),
        page_label: page_label(lang).to_string(),
    })
}

pub fn invoice_pdf(
    conn: &Connection,
    id: &str,
    lang: Option<Language>,
    now: DateTime<Utc>,
) -> Result<Vec<u8>> {
    let clinic = settings::clinic(conn)?;
    let lang = lang.unwrap_or(clinic.default_language);
    let t = texts(lang);
    let inv = invoices::get(conn, id)?;
    let paper = match clinic.paper {
        Paper::Roll80 => Paper::A4,
        p => p,
    };
    let title = format!("{} {}", t.invoice, inv.number.clone().unwrap_or_default());
    document(
        conn,
        title,
        paper,
        invoice_blocks(&inv, &t, clinic.tz(), now),
        lang,
    )
}

pub fn receipt_pdf(
    conn: &Connection,
    payment_id: &str,
    lang: Option<Language>,
    now: DateTime<Utc>,
) -> Result<Vec<u8>> {
    let clinic = settings::clinic(conn)?;
    let lang = lang.unwrap_or(clinic.default_language);
    let t = texts(lang);
    let p = payments::get(conn, payment_id)?;
    let inv = invoices::get(conn, &p.invoice_id)?;
    let cur = inv.currency.as_str();
    let at = crate::ids::parse_ts(&p.at).unwrap_or(now);
    let mut rows = vec![
        (t.number.to_string(), p.receipt_no.clone()),
        (t.date.to_string(), printed_at(at, clinic.tz())),
        (t.patient.to_string(), inv.patient_name.clone()),
        (t.record.to_string(), inv.mrn.clone()),
        (
            t.invoice.to_string(),
            inv.number.clone().unwrap_or_default(),
        ),
        (t.method.to_string(), method_name(&t, p.method).to_string()),
    ];
    if p.amount < 0 {
        rows.push((t.refund.to_string(), p.reason.clone()));
    }
    let mut totals = vec![(t.amount.to_string(), amount(p.amount, cur))];
    if let (Some(tendered), Some(change)) = (p.tendered, p.change_due) {
        totals.push((t.tendered.to_string(), amount(tendered, cur)));
        totals.push((t.change.to_string(), amount(change, cur)));
    }
    totals.push((t.total.to_string(), amount(inv.total, cur)));
    totals.push((t.paid.to_string(), amount(inv.paid, cur)));
    totals.push((t.balance.to_string(), amount(inv.balance, cur)));
    let blocks = vec![
        Block::Title(t.receipt.to_string()),
        Block::KeyValues(rows),
        Block::Totals(totals),
        Block::Rule {
            label: Some(format!("{}: {}", t.cashier, p.by)),
        },
    ];
    let s = super::settings(conn)?;
    let paper = if s.receipts_on_roll {
        Paper::Roll80
    } else {
        clinic.paper
    };
    document(
        conn,
        format!("{} {}", t.receipt, p.receipt_no),
        paper,
        blocks,
        lang,
    )
}

pub fn close_pdf(
    conn: &Connection,
    id: &str,
    lang: Option<Language>,
    now: DateTime<Utc>,
) -> Result<Vec<u8>> {
    let clinic = settings::clinic(conn)?;
    let lang = lang.unwrap_or(clinic.default_language);
    let t = texts(lang);
    let c = close::get(conn, id)?;
    let cur = clinic.currency.as_str();
    let d = digits(cur);
    let at = c
        .closed_at
        .as_deref()
        .and_then(crate::ids::parse_ts)
        .unwrap_or(now);
    let blocks = vec![
        Block::Title(format!("{} {}", t.close, c.day)),
        Block::KeyValues(vec![
            (t.date.to_string(), printed_at(at, clinic.tz())),
            (
                t.cashier.to_string(),
                c.closed_by.clone().unwrap_or_default(),
            ),
            (t.payments.to_string(), c.payments.to_string()),
        ]),
        Block::Table {
            columns: vec![
                Column::new(t.method, 3.0, Align::Left),
                Column::new(t.qty, 1.0, Align::Right),
                Column::new(t.amount, 2.0, Align::Right),
            ],
            rows: c
                .by_method
                .iter()
                .map(|m| {
                    vec![
                        method_name(&t, m.method).to_string(),
                        m.count.to_string(),
                        money(m.amount, d),
                    ]
                })
                .collect(),
        },
        Block::Table {
            columns: vec![
                Column::new(t.counted, 3.0, Align::Left),
                Column::new(t.qty, 1.0, Align::Right),
                Column::new(t.amount, 2.0, Align::Right),
            ],
            rows: c
                .counted
                .iter()
                .filter(|x| x.count > 0)
                .map(|x| {
                    vec![
                        money(x.value, d),
                        x.count.to_string(),
                        money(x.value * x.count, d),
                    ]
                })
                .collect(),
        },
        Block::Totals(vec![
            (t.expected.to_string(), amount(c.expected_cash, cur)),
            (t.counted.to_string(), amount(c.counted_cash, cur)),
            (t.difference.to_string(), amount(c.difference, cur)),
        ]),
        Block::KeyValues(vec![
            (t.note.to_string(), c.note.clone()),
            (
                t.audit_head.to_string(),
                format!("#{} {}", c.audit_seq, c.audit_hash),
            ),
        ]),
        Block::Rule {
            label: Some(t.cashier.to_string()),
        },
    ];
    let paper = match clinic.paper {
        Paper::Roll80 => Paper::A4,
        p => p,
    };
    document(conn, format!("{} {}", t.close, c.day), paper, blocks, lang)
}
