# ikt/s-cscf-agent: Sidecar beside the S-CSCF: takes CK/IK out of AKA 401s and ships them to the P-CSCF side.
# Built by deploy/docker/build.sh from a static binary made on the host, so it pulls no base image
# and builds the same with or without a registry. Runs as uid 65532 with nothing else in the image.
FROM scratch
COPY etc/ /etc/
COPY bin/s-cscf-agent /usr/local/bin/s-cscf-agent
USER 65532:65532
EXPOSE 5070/udp 5070/tcp 9101/tcp
ENTRYPOINT ["/usr/local/bin/s-cscf-agent"]
CMD ["--config", "/etc/ikt/s-cscf-agent.toml"]
