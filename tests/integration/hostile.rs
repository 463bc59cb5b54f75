//! What the HTML tests share: a corpus of hostile texts, and the structure of a parsed
//! page (its elements and attribute names in order) to compare a page over hostile data
//! with the same page over harmless data.

/// Hostile review texts, author names and URLs: the attacks of the OWASP XSS filter
/// evasion sheet that matter here, each in eight wrappings.
pub fn hostile_corpus() -> Vec<String> {
    let base = [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "<svg onload=alert(1)>",
        "<svg><script>alert(1)</script></svg>",
        "\"><script>alert(1)</script>",
        "'><img src=x onerror=alert(1)>",
        "<a href=\"javascript:alert(1)\">x</a>",
        "javascript:alert(1)",
        " JaVaScRiPt:alert(1)",
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        "<iframe src=\"data:text/html,<script>alert(1)</script>\">",
        "<body onload=alert(1)>",
        "<style>body{display:none}</style>",
        "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
        "<!--<img src=\"--><img src=x onerror=alert(1)//\">",
        "<![CDATA[<script>alert(1)</script>]]>",
        "\u{202E}gnp.exe<b>bold</b>",
        "abc\u{2066}<b>x</b>\u{2069}\u{202D}",
        "<object data=\"javascript:alert(1)\">",
        "<embed src=javascript:alert(1)>",
        "<form action=javascript:alert(1)><input type=submit>",
        "<details open ontoggle=alert(1)>",
        "<video><source onerror=alert(1)>",
        "<base href=\"https://evil.example/\">",
        "<meta http-equiv=\"refresh\" content=\"0;url=https://evil.example\">",
        "<link rel=stylesheet href=https://evil.example/x.css>",
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "</textarea></td></tr></table><script>alert(1)</script>",
        "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
        "<svg><animate onbegin=alert(1) attributeName=x dur=1s>",
    ];
    let mut out = Vec::new();
    for b in base {
        out.push(b.to_string());
        out.push(format!("Great place! {b}"));
        out.push(format!("{b} would come again"));
        out.push(b.to_uppercase());
        out.push(format!("line one\n{b}\nline two"));
        out.push(format!("\"{b}\""));
        out.push(format!("{b}{b}"));
        out.push(format!("\u{0}{b}\u{7}"));
    }
    out
}

/// Every element and attribute name of a document, in order, with `href` values.
pub fn structure(html: &str) -> Vec<String> {
    let doc = scraper::Html::parse_document(html);
    doc.root_element()
        .descendants()
        .filter_map(scraper::ElementRef::wrap)
        .map(|e| {
            let mut attrs: Vec<String> = e
                .value()
                .attrs()
                .map(|(k, v)| {
                    if k == "href" {
                        format!("{k}={v}")
                    } else {
                        k.to_string()
                    }
                })
                .collect();
            attrs.sort();
            format!("{}[{}]", e.value().name(), attrs.join(","))
        })
        .collect()
}
