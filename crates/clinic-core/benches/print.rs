//! The printing engine's figures (BENCHMARKS.md): a one-page invoice with 10 lines of Thai,
//! Cyrillic and Latin text, 1,000 of them in one process, its size, a 20-page report; and
//! the same invoice through HTML-to-PDF routes (WeasyPrint, wkhtmltopdf) where installed.
//! Prints one JSON document. `cargo bench -p clinic-core --bench print`

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use clinic_core::dev::papers;
use clinic_core::print::{render, Align, Block, Document, Paper};
use common::Stats;

fn pages(pdf: &[u8]) -> usize {
    lopdf::Document::load_mem(pdf).unwrap().get_pages().len()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The same document as HTML, in the same fonts, for an HTML-to-PDF route.
fn html(doc: &Document) -> String {
    let fonts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/fonts");
    let face = |family: &str, file: &str, weight: &str| {
        format!(
            "@font-face {{ font-family: '{family}'; src: url('file://{}'); font-weight: {weight}; }}\n",
            fonts.join(file).display()
        )
    };
    let mut out = String::from("<!doctype html><html><head><meta charset='utf-8'><style>\n");
    out += &face("Doc", "DejaVuSans.ttf", "normal");
    out += &face("Doc", "DejaVuSans-Bold.ttf", "bold");
    out += &face("DocThai", "NotoSansThai-Regular.ttf", "normal");
    out += &face("DocThai", "NotoSansThai-Bold.ttf", "bold");
    out += "@page { size: A4; margin: 18mm; @bottom-right { content: 'Page ' counter(page) ' of ' counter(pages); font-size: 8pt; } }
body { font-family: 'Doc', 'DocThai'; font-size: 10pt; line-height: 1.45; }
h1 { font-size: 16pt; margin: 0; } h2 { font-size: 13pt; } table { width: 100%; border-collapse: collapse; }
th { text-align: left; border-bottom: 0.6pt solid #444; } td.r, th.r { text-align: right; } tr { page-break-inside: avoid; }
.totals { text-align: right; } .kv td:first-child { font-weight: bold; padding-right: 8pt; }
</style></head><body>\n";
    for b in &doc.blocks {
        match b {
            Block::Header { name, lines, logo } => {
                if logo.is_some() {
                    use base64::Engine;
                    let png = base64::engine::general_purpose::STANDARD.encode(papers::logo_png());
                    out += &format!(
                        "<img src='data:image/png;base64,{png}' style='float:right;height:16mm'>"
                    );
                }
                out += &format!("<h1>{}</h1>", escape(name));
                for l in lines {
                    out += &format!("<div>{}</div>", escape(l));
                }
                out += "<hr>";
            }
            Block::Title(t) => out += &format!("<h2>{}</h2>", escape(t)),
            Block::Paragraph(t) => out += &format!("<p>{}</p>", escape(t)),
            Block::Styled { text, .. } => out += &format!("<p>{}</p>", escape(text)),
            Block::KeyValues(rows) => {
                out += "<table class='kv'>";
                for (k, v) in rows {
                    out += &format!("<tr><td>{}</td><td>{}</td></tr>", escape(k), escape(v));
                }
                out += "</table>";
            }
            Block::Table { columns, rows } => {
                out += "<table><thead><tr>";
                for c in columns {
                    let class = if c.align == Align::Right {
                        " class='r'"
                    } else {
                        ""
                    };
                    out += &format!("<th{class}>{}</th>", escape(&c.title));
                }
                out += "</tr></thead><tbody>";
                for r in rows {
                    out += "<tr>";
                    for (cell, c) in r.iter().zip(columns) {
                        let class = if c.align == Align::Right {
                            " class='r'"
                        } else {
                            ""
                        };
                        out += &format!("<td{class}>{}</td>", escape(cell));
                    }
                    out += "</tr>";
                }
                out += "</tbody></table>";
            }
            Block::Totals(rows) => {
                for (k, v) in rows {
                    out += &format!("<div class='totals'>{} {}</div>", escape(k), escape(v));
                }
            }
            Block::Rule { label } => {
                out += &format!(
                    "<div style='margin-top:20pt;width:60%;border-top:0.5pt solid #444'>{}</div>",
                    escape(label.as_deref().unwrap_or(""))
                )
            }
            Block::Space(pt) => out += &format!("<div style='height:{pt}pt'></div>"),
        }
    }
    out + "</body></html>"
}

fn installed(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `runs` conversions of `doc` by an HTML-to-PDF tool (one process per document, as a
/// clinic app would call it), with the size of the PDF it makes.
fn html_route(tool: &str, doc: &Document, runs: usize) -> Option<serde_json::Value> {
    if !installed(tool) {
        return Some(serde_json::json!({ "name": tool, "installed": false }));
    }
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("invoice.html");
    let output = dir.path().join("invoice.pdf");
    std::fs::write(&input, html(doc)).unwrap();
    let convert = || {
        let mut cmd = Command::new(tool);
        if tool == "wkhtmltopdf" {
            cmd.args(["--quiet", "--enable-local-file-access", "-s", "A4"]);
        }
        let out = cmd.arg(&input).arg(&output).output().unwrap();
        assert!(
            out.status.success(),
            "{tool}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    convert();
    let stats = Stats::measure(&format!("{tool}_invoice"), 0, runs, |_| convert());
    let bytes = std::fs::metadata(&output).unwrap().len();
    let mut v = stats.json();
    v["bytes"] = bytes.into();
    v["pages"] = pages(&std::fs::read(&output).unwrap()).into();
    Some(v)
}

fn main() {
    // One invoice: its latency over many renders (each a different invoice number).
    let invoice = |i: usize| papers::invoice(i as u32, 10, Paper::A4);
    let one = Stats::measure("invoice_1_page_10_lines", 20, 500, |i| {
        std::hint::black_box(render(&invoice(i)).unwrap());
    });
    let pdf = render(&invoice(1)).unwrap();
    assert_eq!(pages(&pdf), 1);
    let bytes = pdf.len();

    // A thousand in one process, one after another.
    let t = Instant::now();
    let mut total_bytes = 0;
    for i in 0..1000 {
        total_bytes += render(&invoice(i)).unwrap().len();
    }
    let thousand = t.elapsed();

    // A report of 20 pages, full: the most rows that still fit on 20 (pages grow with rows).
    let report_pages = |rows| pages(&render(&papers::report(rows, Paper::A4)).unwrap());
    let (mut lo, mut hi) = (1usize, 4000usize);
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if report_pages(mid) <= 20 {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let rows = lo;
    assert_eq!(report_pages(rows), 20);
    let report = papers::report(rows, Paper::A4);
    let report_stats = Stats::measure("report_20_pages", 2, 30, |_| {
        std::hint::black_box(render(&report).unwrap());
    });
    let report_bytes = render(&report).unwrap().len();

    let weasy = html_route("weasyprint", &invoice(1), 10);
    let wk = html_route("wkhtmltopdf", &invoice(1), 10);
    let ratio = |v: &Option<serde_json::Value>| {
        v.as_ref()
            .and_then(|v| v["p50_us"].as_f64())
            .map(|us| (us / Stats::us(one.pct(0.5)) * 10.0).round() / 10.0)
    };

    let ms = |d: Duration| (d.as_secs_f64() * 10_000.0).round() / 10.0;
    let out = serde_json::json!({
        "invoice": one.json(),
        "invoice_bytes": bytes,
        "invoices_1000_ms": ms(thousand),
        "invoices_1000_bytes": total_bytes,
        "report_20_pages": { "rows": rows, "bytes": report_bytes, "latency": report_stats.json() },
        "html_routes": [weasy, wk],
        "html_route_p50_over_ours": {
            "weasyprint": ratio(&weasy),
            "wkhtmltopdf": ratio(&wk),
        },
        "targets": {
            "invoice_p95_under_ms": 20,
            "invoices_1000_under_s": 10,
            "invoice_under_bytes": 60 * 1024,
            "report_20_pages_under_ms": 200,
        },
    });
    println!("{}", serde_json::to_string_pretty(&out).unwrap());
}
