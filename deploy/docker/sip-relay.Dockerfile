# ikt/sip-relay: a bare stateless SIP relay hop (the agents' relay engine without key handling).
# Built by deploy/docker/build.sh from a static binary made on the host; pulls no base image.
FROM scratch
COPY etc/ /etc/
COPY bin/sip-relay /usr/local/bin/sip-relay
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/sip-relay"]
