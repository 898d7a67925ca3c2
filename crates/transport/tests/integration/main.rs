//! Loopback integration tests of the key transport: every scenario runs over gRPC and over
//! QUIC (both stream modes where it matters).

mod cut;
mod scenarios;
mod support;

mod grpc {
    //! gRPC over mutual TLS 1.3.
    use crate::scenarios;
    use crate::support::Kind;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn delivery_with_ack() {
        scenarios::delivery_with_ack(Kind::Grpc).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn silent_cut_is_noticed_and_healed() {
        crate::cut::silent_cut_is_noticed_and_healed(Kind::Grpc).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn refused_and_counted() {
        scenarios::refused_and_counted(Kind::Grpc).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn plain_tcp_is_refused_and_counted() {
        scenarios::plain_tcp_refused(Kind::Grpc).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn receiver_restart_redelivers_unacked() {
        scenarios::receiver_restart(Kind::Grpc).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn certificate_rotation_without_restart() {
        scenarios::rotation(Kind::Grpc).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn window_bounds_and_rejects() {
        scenarios::window_and_reject(Kind::Grpc).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn peer_table_change_refuses_removed_peer() {
        scenarios::peer_table_change(Kind::Grpc).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn oversized_message_from_authenticated_peer() {
        scenarios::hostile_frames_from_authenticated_peer(Kind::Grpc).await;
    }

    #[test]
    fn no_key_material_in_logs() {
        scenarios::no_key_material_in_logs(Kind::Grpc);
    }
}

mod quic {
    //! QUIC (quinn) over mutual TLS 1.3, ALPN ikt/1.
    use crate::scenarios;
    use crate::support::Kind;
    use ikt_transport::quic::StreamMode;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn delivery_with_ack_bidi() {
        scenarios::delivery_with_ack(Kind::Quic(StreamMode::Bidi)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn silent_cut_is_noticed_and_healed() {
        crate::cut::silent_cut_is_noticed_and_healed(Kind::Quic(StreamMode::Bidi)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn delivery_with_ack_uni_per_bundle() {
        scenarios::delivery_with_ack(Kind::Quic(StreamMode::UniPerBundle)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn refused_and_counted() {
        scenarios::refused_and_counted(Kind::Quic(StreamMode::Bidi)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn plain_udp_garbage_is_dropped() {
        scenarios::plain_udp_garbage(Kind::Quic(StreamMode::Bidi)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn receiver_restart_redelivers_unacked() {
        scenarios::receiver_restart(Kind::Quic(StreamMode::Bidi)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn receiver_restart_redelivers_unacked_uni() {
        scenarios::receiver_restart(Kind::Quic(StreamMode::UniPerBundle)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn certificate_rotation_without_restart() {
        scenarios::rotation(Kind::Quic(StreamMode::Bidi)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn window_bounds_and_rejects() {
        scenarios::window_and_reject(Kind::Quic(StreamMode::Bidi)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn peer_table_change_refuses_removed_peer() {
        scenarios::peer_table_change(Kind::Quic(StreamMode::Bidi)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hostile_frames_from_authenticated_peer() {
        scenarios::hostile_frames_from_authenticated_peer(Kind::Quic(StreamMode::Bidi)).await;
    }

    #[test]
    fn no_key_material_in_logs() {
        scenarios::no_key_material_in_logs(Kind::Quic(StreamMode::Bidi));
    }
}
