# One image for every Sextant service: `sextant serve --services=…` picks
# which run in a container. Multi-stage: a static binary on distroless,
# running as a non-root user.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/sextant ./cmd/sextant

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/sextant /usr/local/bin/sextant
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/sextant"]
CMD ["serve", "--addr=0.0.0.0:8080", "--data-dir=/tmp/sextant"]
