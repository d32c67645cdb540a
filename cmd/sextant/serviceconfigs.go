package main

import (
	"errors"
	"strings"

	"github.com/sextant-analytics/sextant/pkg/server"
	"github.com/sextant-analytics/sextant/pkg/tracing"
	"github.com/sextant-analytics/sextant/services/collect"
	"github.com/sextant-analytics/sextant/services/gateway"
	"github.com/sextant-analytics/sextant/services/insights"
	"github.com/sextant-analytics/sextant/services/projection"
)

// The services' configs, from the flags: serveConfig.Validate checks them
// (their Validate) before serve opens or prints anything, and serve adds
// the dependencies (logger, metrics, stores …) before it calls New.

func (c serveConfig) collectConfig() collect.Config {
	lim := collect.DefaultLimits()
	lim.MaxEvents = c.MaxBatchEvents
	return collect.Config{
		Limits: lim, Rate: c.CollectRate, Burst: c.CollectBurst,
		AppendTimeout: c.CollectTimeout, MaxAppends: c.MaxAppends,
		TrustedProxies: c.TrustedProxies, CountryHeader: c.CountryHeader,
	}
}

func (c serveConfig) gatewayConfig() gateway.Config {
	return gateway.Config{
		Collect: c.CollectBackends, Insights: c.InsightsBackends, Projection: c.ProjectionBackends,
		Rate: c.CollectRate, Burst: c.CollectBurst, IPRate: c.IPRate, IPBurst: c.IPBurst,
		MaxBodyBytes: c.MaxBodyBytes,
	}
}

func (c serveConfig) projectionConfig() projection.Config {
	return projection.Config{FlushInterval: c.FlushInterval}
}

func (c serveConfig) insightsConfig() insights.Config {
	return insights.Config{WatermarkRefresh: c.WatermarkRefresh}
}

func (c serveConfig) serverConfig() server.Config {
	return server.Config{Addr: c.Addr, MaxBodyBytes: int64(c.MaxBodyBytes), Timeouts: c.Timeouts}
}

func (c serveConfig) tracingConfig() tracing.Config {
	return tracing.Config{Endpoint: c.OTLPEndpoint, SampleRatio: c.TraceSampleRatio, Services: c.Services, Version: strings.TrimPrefix(version(), "sextant ")}
}

// validateServices validates the configs of the services c runs.
func (c serveConfig) validateServices() error {
	errs := []error{c.serverConfig().Validate(), c.tracingConfig().Validate()}
	if c.has("gateway") {
		errs = append(errs, c.gatewayConfig().Validate())
	}
	if c.has("collect") {
		errs = append(errs, c.collectConfig().Validate())
	}
	if c.has("projection") {
		errs = append(errs, c.projectionConfig().Validate())
	}
	if c.has("insights") || c.has("gateway") {
		errs = append(errs, c.insightsConfig().Validate())
	}
	return errors.Join(errs...)
}
