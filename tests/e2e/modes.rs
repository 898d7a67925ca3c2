//! Every mode carries the keys: the P-CSCF holds the UE's keys, the UE never sees them, and
//! only `plain` lets them cross the SIP path between the agents.

use ikt_agent::Mode;

use crate::support::{Chain, Opts, register};

async fn registers_and_matches(mode: Mode) -> Chain {
    let chain = Chain::start(Opts::new(mode)).await;
    for i in 0..chain.provisioned.len() {
        let ue = chain.ue(i).await;
        let fp = register(&ue).await;
        assert_eq!(
            chain.net.pcscf_fingerprint(ue.impi()).as_deref(),
            Some(fp.as_str()),
            "{mode}: P-CSCF keys differ from the UE's"
        );
        assert_eq!(ue.status().keys_seen_in_401, 0, "{mode}: UE saw ck/ik");
    }
    chain
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_keys_cross_in_clear() {
    let chain = registers_and_matches(Mode::Plain).await;
    assert!(
        chain.tap.with_clear_keys() >= 3,
        "plain is the baseline: keys in clear"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_carries_tokens_not_keys() {
    let chain = registers_and_matches(Mode::Sealed).await;
    assert_eq!(chain.tap.with_clear_keys(), 0);
    assert!(chain.tap.with_tokens() >= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_carries_keys_out_of_band() {
    let chain = registers_and_matches(Mode::Grpc).await;
    assert_eq!(chain.tap.with_clear_keys(), 0);
    assert_eq!(chain.tap.with_tokens(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_carries_keys_out_of_band() {
    let chain = registers_and_matches(Mode::Quic).await;
    assert_eq!(chain.tap.with_clear_keys(), 0);
    assert_eq!(chain.tap.with_tokens(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_ack_before_forward_also_works() {
    let mut opts = Opts::new(Mode::Grpc);
    opts.ack_before_forward = true;
    let chain = Chain::start(opts).await;
    let ue = chain.ue(0).await;
    let fp = register(&ue).await;
    assert_eq!(chain.net.pcscf_fingerprint(ue.impi()), Some(fp));
    assert_eq!(chain.tap.with_clear_keys(), 0);
}
