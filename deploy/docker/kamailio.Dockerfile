# ikt/kamailio: Debian's Kamailio (host package `kamailio`) with the modules and configs of
# deploy/kamailio, for the compose demo's P-CSCF and I-CSCF. build.sh copies the program, the
# modules and exactly the libraries they link into rootfs/, so no base image is pulled.
FROM scratch
COPY rootfs/ /
USER 65532:65532
WORKDIR /tmp
ENTRYPOINT ["/usr/sbin/kamailio", "-DD", "-E", "-Y", "/tmp", "-m", "64", "-M", "8"]
