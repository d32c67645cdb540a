package auth

import (
	"github.com/sextant-analytics/sextant/gen/sextant/admin/v1/adminv1connect"
	"github.com/sextant-analytics/sextant/gen/sextant/collect/v1/collectv1connect"
	"github.com/sextant-analytics/sextant/gen/sextant/insights/v1/insightsv1connect"
	"github.com/sextant-analytics/sextant/gen/sextant/projection/v1/projectionv1connect"
	"github.com/sextant-analytics/sextant/pkg/ga4data"
	"github.com/sextant-analytics/sextant/pkg/property"
)

// Scopes is which kind of key each RPC takes, the table the Interceptor
// enforces: write keys collect, read keys read reports (Sextant's and the
// GA4 Data API's), admin keys manage properties, keys and projection
// versions, and either reads the projections' state. An RPC missing from
// it would pass unauthenticated (as health and reflection do): a test
// checks that every RPC of the services is listed.
func Scopes() map[string][]property.Scope {
	w, r, a := []property.Scope{property.Write}, []property.Scope{property.Read}, []property.Scope{property.Admin}
	ra := []property.Scope{property.Read, property.Admin}
	return map[string][]property.Scope{
		adminv1connect.AdminServiceCreatePropertyProcedure:            a,
		adminv1connect.AdminServiceListPropertiesProcedure:            a,
		adminv1connect.AdminServiceGetPropertyProcedure:               a,
		adminv1connect.AdminServiceUpdatePropertyProcedure:            a,
		adminv1connect.AdminServiceDeletePropertyProcedure:            a,
		adminv1connect.AdminServiceCreateKeyProcedure:                 a,
		adminv1connect.AdminServiceListKeysProcedure:                  a,
		adminv1connect.AdminServiceRotateKeyProcedure:                 a,
		adminv1connect.AdminServiceRevokeKeyProcedure:                 a,
		adminv1connect.AdminServiceDeleteUserProcedure:                a,
		collectv1connect.CollectServiceCollectProcedure:               w,
		collectv1connect.CollectServiceStreamCollectProcedure:         w,
		insightsv1connect.InsightsServiceRunReportProcedure:           r,
		insightsv1connect.InsightsServiceRunRealtimeReportProcedure:   r,
		insightsv1connect.InsightsServiceGetMetadataProcedure:         r,
		insightsv1connect.InsightsServiceCheckCompatibilityProcedure:  r,
		ga4data.RunReportProcedure:                                    r,
		ga4data.RunRealtimeReportProcedure:                            r,
		ga4data.BatchRunReportsProcedure:                              r,
		ga4data.GetMetadataProcedure:                                  r,
		ga4data.CheckCompatibilityProcedure:                           r,
		ga4data.RunPivotReportProcedure:                               r,
		ga4data.BatchRunPivotReportsProcedure:                         r,
		projectionv1connect.ProjectionServiceListProjectionsProcedure: ra,
		projectionv1connect.ProjectionServiceGetReplayProcedure:       ra,
		projectionv1connect.ProjectionServiceWatchReplayProcedure:     ra,
		projectionv1connect.ProjectionServiceStartReplayProcedure:     a,
		projectionv1connect.ProjectionServiceActivateProcedure:        a,
		projectionv1connect.ProjectionServiceRollbackProcedure:        a,
		projectionv1connect.ProjectionServiceDeleteVersionProcedure:   a,
	}
}
