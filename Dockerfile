# The wandb-operator image: one static binary on distroless (no shell, no package manager),
# running as the distroless `nonroot` user (65532), matching the chart's securityContext.
#
#   docker build -t wandb-operator:0.1.0 .
#
# For people with a container engine. This project's CI has none: it builds and tests the same
# image (static musl binary, CA bundle, numeric user 65532, no shell) with scripts/build-image.sh
# (no engine; OCI image layout, reproducible digest), which is what releases ship; see
# docs/development.md "Container image".

# --- build: a static musl binary ---
FROM docker.io/library/rust:1.95-bookworm AS build
# musl-tools: the C toolchain for the musl target (aws-lc-sys, rustls' crypto, and the mimalloc
# allocator are C code).
# cmake and clang: aws-lc-sys's build falls back to them on some targets.
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools cmake clang \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --locked --release --target x86_64-unknown-linux-musl -p wandb-operator \
 && cp target/x86_64-unknown-linux-musl/release/wandb-operator /wandb-operator

# --- run ---
# static-debian12 carries CA certificates (/etc/ssl/certs), tzdata and /etc/passwd with nonroot.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /wandb-operator /wandb-operator
USER 65532:65532
ENTRYPOINT ["/wandb-operator"]
CMD ["run"]
