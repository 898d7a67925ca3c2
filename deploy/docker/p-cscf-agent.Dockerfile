# ikt/p-cscf-agent: Sidecar beside the P-CSCF: restores CK/IK into AKA 401s; serves the key transport (gRPC on TCP, QUIC on UDP).
# Built by deploy/docker/build.sh from a static binary made on the host, so it pulls no base image
# and builds the same with or without a registry. Runs as uid 65532 with nothing else in the image.
FROM scratch
COPY etc/ /etc/
COPY bin/p-cscf-agent /usr/local/bin/p-cscf-agent
USER 65532:65532
EXPOSE 5062/udp 5062/tcp 7710/tcp 7710/udp 9102/tcp
ENTRYPOINT ["/usr/local/bin/p-cscf-agent"]
CMD ["--config", "/etc/ikt/p-cscf-agent.toml"]
