// Google's Node.js Data API client (@google-analytics/data), pointed at
// Sextant over its REST transport or, with SEXTANT_GA4_TRANSPORT=grpc, its
// gRPC transport. Prints a JSON summary of the answers, which
// cmd/sextant/ga4clients_test.go compares with Sextant's own API.
'use strict';
const {BetaAnalyticsDataClient} = require('@google-analytics/data');
const {OAuth2Client} = require('google-auth-library');
const {grpc} = require('google-gax');

const [host, port] = process.env.SEXTANT_ADDR.split(':');
const prop = 'properties/' + process.env.SEXTANT_PROPERTY_ID;
let client;
let opts = {};
if (process.env.SEXTANT_GA4_TRANSPORT === 'grpc') {
  // A plaintext channel: the read key goes in each call's metadata.
  client = new BetaAnalyticsDataClient({apiEndpoint: host, port: Number(port), sslCreds: grpc.credentials.createInsecure()});
  opts = {otherArgs: {headers: {authorization: 'Bearer ' + process.env.SEXTANT_READ_KEY}}};
} else {
  const auth = new OAuth2Client();
  auth.setCredentials({access_token: process.env.SEXTANT_READ_KEY, expiry_date: Date.now() + 3600e3});
  client = new BetaAnalyticsDataClient({apiEndpoint: host, port: Number(port), protocol: 'http', fallback: true, authClient: auth});
}

const typeName = t => (typeof t === 'number' ? ['METRIC_TYPE_UNSPECIFIED', 'TYPE_INTEGER', 'TYPE_FLOAT', '', 'TYPE_SECONDS', 'TYPE_MILLISECONDS'][t] : t);
const summary = r => ({
  dimensionHeaders: r.dimensionHeaders.map(h => h.name),
  metricHeaders: r.metricHeaders.map(h => [h.name, typeName(h.type)]),
  rows: r.rows.map(row => [row.dimensionValues.map(v => v.value), row.metricValues.map(v => v.value)]),
  rowCount: r.rowCount,
});

(async () => {
  const out = {reports: {}};
  const [md] = await client.getMetadata({name: prop + '/metadata'}, opts);
  out.metadata = {name: md.name, dimensions: md.dimensions.map(d => d.apiName), metrics: md.metrics.map(m => [m.apiName, typeName(m.type)])};
  for (const d of md.dimensions) {
    // The metrics a report by d takes, by GA4's checkCompatibility.
    const [cc] = await client.checkCompatibility({
      property: prop, dimensions: [{name: d.apiName}], compatibilityFilter: 'COMPATIBLE'}, opts);
    const metrics = cc.metricCompatibilities.map(m => m.metricMetadata.apiName);
    // Ten at a time; a custom metric (customEvent:…) is reported alone.
    const plain = metrics.filter(m => !m.includes(':'));
    const groups = [];
    for (let i = 0; i < plain.length; i += 10) groups.push(plain.slice(i, i + 10));
    for (const m of metrics.filter(m => m.includes(':'))) groups.push([m]);
    for (const [gi, g] of groups.entries()) {
      const [r] = await client.runReport({
        property: prop, dimensions: [{name: d.apiName}], metrics: g.map(name => ({name})),
        dateRanges: [{startDate: '7daysAgo', endDate: 'today'}], limit: 100000,
      }, opts);
      out.reports[`${d.apiName}|${gi}`] = summary(r);
    }
  }
  const [rt] = await client.runRealtimeReport({
    property: prop, dimensions: [{name: 'eventName'}], metrics: [{name: 'eventCount'}],
    minuteRanges: [{startMinutesAgo: 29, endMinutesAgo: 0}],
  }, opts);
  out.realtime = summary(rt);
  const [batch] = await client.batchRunReports({property: prop, requests: [
    {dimensions: [{name: 'country'}], metrics: [{name: 'totalUsers'}], dateRanges: [{startDate: '7daysAgo', endDate: 'today'}]},
    {dimensions: [{name: 'date'}], metrics: [{name: 'sessions'}], dateRanges: [{startDate: '7daysAgo', endDate: 'today'}]},
  ]}, opts);
  out.batch = batch.reports.map(summary);
  const [pv] = await client.runPivotReport({
    property: prop, dimensions: [{name: 'country'}, {name: 'deviceCategory'}], metrics: [{name: 'sessions'}],
    dateRanges: [{startDate: '7daysAgo', endDate: 'today'}],
    pivots: [
      {fieldNames: ['country'], limit: 3, orderBys: [{metric: {metricName: 'sessions'}, desc: true}]},
      {fieldNames: ['deviceCategory'], limit: 5},
    ],
  }, opts);
  out.pivot = {
    headers: pv.pivotHeaders.map(p => p.pivotDimensionHeaders.map(h => h.dimensionValues.map(v => v.value))),
    rows: pv.rows.map(r => [r.dimensionValues.map(v => v.value), r.metricValues.map(v => v.value)]),
  };
  const [compat] = await client.checkCompatibility({property: prop, dimensions: [{name: 'date'}], metrics: [{name: 'eventCount'}]}, opts);
  out.compatible = compat.dimensionCompatibilities
    .filter(c => c.compatibility === 'COMPATIBLE' || c.compatibility === 1)
    .map(c => c.dimensionMetadata.apiName).sort();
  try {
    await client.runReport({property: prop, dimensions: [{name: 'nope'}], metrics: [{name: 'eventCount'}], dateRanges: [{startDate: 'yesterday', endDate: 'today'}]}, opts);
    out.error = null;
  } catch (e) {
    out.error = {code: e.code, message: e.message};
  }
  process.stdout.write(JSON.stringify(out));
})().catch(e => { console.error(e); process.exit(1); });
