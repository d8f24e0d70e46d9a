//! Printed documents (printpdf). For now: the recovery-key sheet.
//!
//! Fonts are embedded from `assets/fonts` (DejaVu: Latin and Cyrillic) and subset
//! on save, so a sheet stays small.

use chrono::{DateTime, Utc};
use printpdf::{
    Color, Line, LinePoint, Mm, Op, ParsedFont, PdfDocument, PdfFontHandle, PdfPage,
    PdfSaveOptions, Point, Pt, Rgb, TextItem,
};

use crate::error::{Error, Result};
use crate::settings::{ClinicProfile, Language};
use crate::store::Device;

static SANS: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
static SANS_BOLD: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans-Bold.ttf");
static MONO: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSansMono.ttf");

struct Texts {
    title: &'static str,
    clinic: &'static str,
    device: &'static str,
    created: &'static str,
    key_label: &'static str,
    lines: [&'static str; 5],
    stored_by: &'static str,
    date: &'static str,
}

// Thai needs shaping (stacked marks) that printpdf does not do; until the printing
// work adds a shaper, a Thai clinic's sheet is printed in English.
fn texts(lang: Language) -> Texts {
    match lang {
        Language::Ru => Texts {
            title: "Ключ восстановления ClinicDesk",
            clinic: "Клиника",
            device: "Компьютер",
            created: "Создан",
            key_label: "Ключ восстановления",
            lines: [
                "Этот ключ открывает базу данных клиники, если все пароли администраторов утеряны.",
                "Храните лист в сейфе, отдельно от компьютера. Не фотографируйте и не пересылайте его.",
                "Чтобы восстановить доступ: на экране входа выберите «Восстановить доступ»,",
                "введите ключ, имя администратора и новый пароль.",
                "Если ключ мог попасть в чужие руки, создайте новый в настройках.",
            ],
            stored_by: "Хранит (ФИО, подпись)",
            date: "Дата",
        },
        Language::En | Language::Th => Texts {
            title: "ClinicDesk recovery key",
            clinic: "Clinic",
            device: "Computer",
            created: "Created",
            key_label: "Recovery key",
            lines: [
                "This key opens the clinic's database if every administrator password is lost.",
                "Keep this sheet in a safe, away from the computer. Do not photograph or send it.",
                "To recover access: on the sign-in screen choose \"Recover access\",",
                "then enter this key, the administrator's username and a new password.",
                "If the key may have been seen by others, create a new one in Settings.",
            ],
            stored_by: "Kept by (name, signature)",
            date: "Date",
        },
    }
}

fn font(bytes: &[u8]) -> Result<ParsedFont> {
    ParsedFont::from_bytes(bytes, 0, &mut Vec::new())
        .ok_or_else(|| Error::internal("embedded font failed to parse"))
}

fn text(ops: &mut Vec<Op>, font: &PdfFontHandle, size: f32, x: f32, y: f32, s: &str) {
    ops.extend([
        Op::StartTextSection,
        Op::SetFont {
            font: font.clone(),
            size: Pt(size),
        },
        Op::SetTextCursor {
            pos: Point::new(Mm(x), Mm(y)),
        },
        Op::ShowText {
            items: vec![TextItem::Text(s.to_string())],
        },
        Op::EndTextSection,
    ]);
}

fn rule(ops: &mut Vec<Op>, x1: f32, x2: f32, y: f32) {
    ops.push(Op::DrawLine {
        line: Line {
            points: vec![
                LinePoint {
                    p: Point::new(Mm(x1), Mm(y)),
                    bezier: false,
                },
                LinePoint {
                    p: Point::new(Mm(x2), Mm(y)),
                    bezier: false,
                },
            ],
            is_closed: false,
        },
    });
}

pub fn recovery_sheet(
    clinic: &ClinicProfile,
    grouped_key: &str,
    device: &Device,
    now: DateTime<Utc>,
) -> Result<Vec<u8>> {
    let t = texts(clinic.default_language);
    let mut doc = PdfDocument::new(t.title);
    let sans = PdfFontHandle::External(doc.add_font(&font(SANS)?));
    let bold = PdfFontHandle::External(doc.add_font(&font(SANS_BOLD)?));
    let mono = PdfFontHandle::External(doc.add_font(&font(MONO)?));

    let local = now
        .with_timezone(&clinic.tz())
        .format("%Y-%m-%d %H:%M %Z")
        .to_string();
    let mut ops = vec![
        Op::SetOutlineColor {
            col: Color::Rgb(Rgb::new(0.2, 0.2, 0.2, None)),
        },
        Op::SetOutlineThickness { pt: Pt(0.8) },
    ];
    text(&mut ops, &bold, 20.0, 20.0, 270.0, t.title);
    text(
        &mut ops,
        &sans,
        11.0,
        20.0,
        258.0,
        &format!("{}: {}", t.clinic, clinic.name),
    );
    text(
        &mut ops,
        &sans,
        11.0,
        20.0,
        252.0,
        &format!("{}: {}", t.device, device.code),
    );
    text(
        &mut ops,
        &sans,
        11.0,
        20.0,
        246.0,
        &format!("{}: {}", t.created, local),
    );

    text(&mut ops, &bold, 12.0, 20.0, 228.0, t.key_label);
    // The key in two lines of four groups, large and monospaced for copying by hand.
    let groups: Vec<&str> = grouped_key.split('-').collect();
    let half = groups.len().div_ceil(2);
    for (i, line) in groups.chunks(half.max(1)).enumerate() {
        text(
            &mut ops,
            &mono,
            22.0,
            24.0,
            214.0 - i as f32 * 12.0,
            &line.join("-"),
        );
    }
    rule(&mut ops, 20.0, 190.0, 196.0);
    rule(&mut ops, 20.0, 190.0, 232.0);

    for (i, line) in t.lines.iter().enumerate() {
        text(&mut ops, &sans, 10.0, 20.0, 184.0 - i as f32 * 6.5, line);
    }
    text(&mut ops, &sans, 10.0, 20.0, 130.0, t.stored_by);
    rule(&mut ops, 20.0, 130.0, 118.0);
    text(&mut ops, &sans, 10.0, 140.0, 130.0, t.date);
    rule(&mut ops, 140.0, 190.0, 118.0);

    let page = PdfPage::new(Mm(210.0), Mm(297.0), ops);
    let mut warnings = Vec::new();
    let opts = PdfSaveOptions {
        subset_fonts: true,
        ..Default::default()
    };
    Ok(doc.with_pages(vec![page]).save(&opts, &mut warnings))
}
