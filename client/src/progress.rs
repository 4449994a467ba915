//! Progress bars for long transfers, drawn on stderr only when it is a terminal.

use std::path::Path;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A byte progress bar labelled with the file name; hidden unless `show` (and indicatif draws
/// nothing when stderr is not a terminal).
pub fn bar(show: bool, total: Option<u64>, label: &Path) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
    let template = if total.is_some() {
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}"
    } else {
        "{msg} {bytes} {bytes_per_sec}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    let name = label.file_name().map_or_else(
        || label.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    bar.set_message(name);
    bar
}
