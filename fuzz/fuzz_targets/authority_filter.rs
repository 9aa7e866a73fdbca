//! Client bytes of an HTTP/2 connection on a Unix socket: the authority filter must never
//! panic, and how the bytes are cut into reads must not change what the server is given.
#![no_main]

use alp_uds::{AuthorityFilter, frame::PREFACE};
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

fn run(data: &[u8], cut: usize) -> Result<Vec<u8>, alp_uds::FilterError> {
    let mut filter = AuthorityFilter::new();
    let (mut input, mut output) = (BytesMut::new(), BytesMut::new());
    for chunk in [PREFACE, data].concat().chunks(cut) {
        input.extend_from_slice(chunk);
        filter.process(&mut input, &mut output)?;
    }
    Ok(output.to_vec())
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, data)) = data.split_first() else { return };
    let whole = run(data, usize::MAX);
    let cut = run(data, usize::from(cut).max(1));
    assert_eq!(whole, cut, "the same stream, read in pieces");
});
