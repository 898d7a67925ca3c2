# ikt/ims-lab: the reference IMS network (HSS, S-CSCF, I-CSCF, P-CSCF, UE) for demos and tests.
# Built by deploy/docker/build.sh from a static binary made on the host, so it pulls no base image
# and builds the same with or without a registry. Runs as uid 65532 with nothing else in the image.
FROM scratch
COPY etc/ /etc/
COPY bin/ims-lab /usr/local/bin/ims-lab
USER 65532:65532
EXPOSE 5060/udp 5060/tcp
ENTRYPOINT ["/usr/local/bin/ims-lab"]
CMD ["--help"]
