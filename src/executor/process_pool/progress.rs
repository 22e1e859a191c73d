//! Progress bars on long maps (cargo feature `progress`, drawn by
//! [`indicatif`]).

use indicatif::{ProgressBar, ProgressStyle};

use super::map::{ProcessMap, ProcessMapUnordered};

/// A map's results with a progress bar that advances with each result and
/// finishes with the last; see [`ProcessMap::progress`].
#[derive(Debug)]
pub struct WithProgress<I> {
    inner: I,
    bar: ProgressBar,
}

impl<I> WithProgress<I> {
    /// The bar (to change its style or message, or to read its position).
    pub fn bar(&self) -> &ProgressBar {
        &self.bar
    }
}

impl<I: Iterator> Iterator for WithProgress<I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        let item = self.inner.next();
        match item {
            Some(_) => self.bar.inc(1),
            None => self.bar.finish(),
        }
        item
    }
}

/// The bar `progress()` draws: with a length when the items' iterator
/// knows it, a counter otherwise.
fn default_bar(len: Option<usize>) -> ProgressBar {
    match len {
        Some(n) => ProgressBar::new(n as u64).with_style(
            ProgressStyle::with_template(
                "{bar:40} {pos}/{len} items, {per_sec}, {elapsed} elapsed, eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
        None => ProgressBar::no_length().with_style(
            ProgressStyle::with_template("{spinner} {pos} items, {per_sec}, {elapsed} elapsed")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    }
}

macro_rules! progress_methods {
    ($map:ident) => {
        impl<'a, A, R> $map<'a, A, R>
        where
            A: serde::Serialize + serde::de::DeserializeOwned + 'static,
            R: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
        {
            /// Draws a progress bar on standard error as the results come
            /// (hidden when standard error is not a terminal): with a length
            /// and an estimated time left when the items' iterator knows its
            /// length, a counter otherwise. Needs the cargo feature
            /// `progress`.
            pub fn progress(self) -> WithProgress<Self> {
                let bar = default_bar(self.remaining());
                self.progress_with(bar)
            }

            /// Advances `bar` (an [`indicatif::ProgressBar`] of your own,
            /// say in a `MultiProgress`) with each result.
            pub fn progress_with(self, bar: ProgressBar) -> WithProgress<Self> {
                WithProgress { inner: self, bar }
            }
        }
    };
}

progress_methods!(ProcessMap);
progress_methods!(ProcessMapUnordered);
