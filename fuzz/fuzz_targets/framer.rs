//! Feed arbitrary bytes to the stream framer in chunks chosen by the input itself.
#![no_main]

use ikt_sip::{Framer, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&step, rest)) = data.split_first() else {
        return;
    };
    let step = usize::from(step % 64) + 1;
    let limits = Limits {
        max_message: 4096,
        max_headers: 32,
        max_line: 512,
    };
    let mut whole = Framer::new(limits);
    whole.push(rest);
    let mut chunked = Framer::new(limits);
    let mut from_whole = Vec::new();
    while let Ok(Some(m)) = whole.next_message() {
        from_whole.push(m);
    }
    let mut from_chunks = Vec::new();
    for chunk in rest.chunks(step) {
        chunked.push(chunk);
        while let Ok(Some(m)) = chunked.next_message() {
            from_chunks.push(m);
        }
    }
    // However the stream is split, the same messages come out (up to the first error).
    let n = from_whole.len().min(from_chunks.len());
    assert_eq!(from_whole[..n], from_chunks[..n]);
});
