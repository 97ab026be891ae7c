//! CSV as RFC 4180 writes it, with spreadsheet formula injection neutralised.

/// One CSV line (CRLF-terminated). A cell that a spreadsheet would run as a formula (starting with
/// `=`, `+`, `-`, `@`, tab or carriage return) is prefixed with `'`; cells holding a comma, quote
/// or line break are quoted, with quotes doubled.
pub fn line(cells: &[&str]) -> String {
    let mut out = cells
        .iter()
        .map(|cell| quote(&neutralise(cell)))
        .collect::<Vec<_>>()
        .join(",");
    out.push_str("\r\n");
    out
}

fn neutralise(cell: &str) -> String {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}"),
        _ => cell.to_owned(),
    }
}

fn quote(cell: &str) -> String {
    if cell.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_what_rfc_4180_requires() {
        assert_eq!(
            line(&["plain", "a,b", "say \"hi\"", "two\nlines"]),
            "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\"\r\n"
        );
    }

    #[test]
    fn neutralises_formulas() {
        assert_eq!(
            line(&["=HYPERLINK(\"x\")", "+1", "-2", "@SUM(A1)", "\tx", "safe"]),
            "\"'=HYPERLINK(\"\"x\"\")\",'+1,'-2,'@SUM(A1),'\tx,safe\r\n"
        );
    }
}
