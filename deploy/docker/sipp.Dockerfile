# ikt/sipp: SIPp as a test UE for the compose test. build.sh copies the host's sipp (Debian package
# sip-tester) and exactly the shared libraries it links into rootfs/, so no base image is pulled.
FROM scratch
COPY rootfs/ /
USER 65532:65532
WORKDIR /tmp
ENTRYPOINT ["/usr/bin/sipp"]
