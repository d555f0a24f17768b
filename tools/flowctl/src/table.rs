//! Plain-text tables for terminal reports: names left-aligned, figures right-aligned.

/// Renders `rows` (the first is usually the header) indented by two spaces; the first
/// `left` columns are left-aligned, the rest right-aligned.
pub fn table<const N: usize>(rows: &[[String; N]], left: usize) -> String {
    let widths: Vec<usize> = (0..N)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| {
                if i < left {
                    format!("{c:<w$}")
                } else {
                    format!("{c:>w$}")
                }
            })
            .collect();
        out.push_str("  ");
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}
