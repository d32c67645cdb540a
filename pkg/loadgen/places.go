package loadgen

import (
	"math"
	"time"
)

// city is a visitor's city and its region (ISO 3166-2).
type city struct{ name, region string }

// countryCities are a country's cities, the first the most visited.
type countryCities struct {
	cities  []city
	weights []float64 // cumulative: the k-th city weighs 1/(k+1)
}

func citiesOfCountries(m map[string][]city) map[string]countryCities {
	out := make(map[string]countryCities, len(m))
	for code, cs := range m {
		ws := make([]float64, len(cs))
		for k := range cs {
			ws[k] = 1 / float64(k+1)
		}
		out[code] = countryCities{cities: cs, weights: cumulative(ws...)}
	}
	return out
}

// citiesOf are the cities of the countries visitors come from.
var citiesOf = citiesOfCountries(map[string][]city{
	"US": {{"New York", "US-NY"}, {"Los Angeles", "US-CA"}, {"Chicago", "US-IL"}, {"Houston", "US-TX"}, {"San Francisco", "US-CA"}, {"Seattle", "US-WA"}, {"Miami", "US-FL"}, {"Boston", "US-MA"}},
	"IN": {{"Mumbai", "IN-MH"}, {"Delhi", "IN-DL"}, {"Bengaluru", "IN-KA"}, {"Chennai", "IN-TN"}, {"Hyderabad", "IN-TG"}},
	"GB": {{"London", "GB-ENG"}, {"Manchester", "GB-ENG"}, {"Birmingham", "GB-ENG"}, {"Edinburgh", "GB-SCT"}, {"Glasgow", "GB-SCT"}},
	"DE": {{"Berlin", "DE-BE"}, {"Munich", "DE-BY"}, {"Hamburg", "DE-HH"}, {"Cologne", "DE-NW"}, {"Frankfurt", "DE-HE"}},
	"FR": {{"Paris", "FR-IDF"}, {"Lyon", "FR-ARA"}, {"Marseille", "FR-PAC"}, {"Toulouse", "FR-OCC"}, {"Bordeaux", "FR-NAQ"}},
	"BR": {{"São Paulo", "BR-SP"}, {"Rio de Janeiro", "BR-RJ"}, {"Belo Horizonte", "BR-MG"}, {"Brasília", "BR-DF"}},
	"CA": {{"Toronto", "CA-ON"}, {"Montreal", "CA-QC"}, {"Vancouver", "CA-BC"}, {"Calgary", "CA-AB"}},
	"JP": {{"Tokyo", "JP-13"}, {"Osaka", "JP-27"}, {"Yokohama", "JP-14"}, {"Nagoya", "JP-23"}},
	"AU": {{"Sydney", "AU-NSW"}, {"Melbourne", "AU-VIC"}, {"Brisbane", "AU-QLD"}, {"Perth", "AU-WA"}},
	"ES": {{"Madrid", "ES-MD"}, {"Barcelona", "ES-CT"}, {"Valencia", "ES-VC"}, {"Seville", "ES-AN"}},
	"IT": {{"Milan", "IT-25"}, {"Rome", "IT-62"}, {"Naples", "IT-72"}, {"Turin", "IT-21"}},
	"NL": {{"Amsterdam", "NL-NH"}, {"Rotterdam", "NL-ZH"}, {"Utrecht", "NL-UT"}, {"The Hague", "NL-ZH"}},
	"MX": {{"Mexico City", "MX-CMX"}, {"Guadalajara", "MX-JAL"}, {"Monterrey", "MX-NLE"}},
	"PL": {{"Warsaw", "PL-14"}, {"Kraków", "PL-12"}, {"Wrocław", "PL-02"}},
	"SE": {{"Stockholm", "SE-AB"}, {"Gothenburg", "SE-O"}, {"Malmö", "SE-M"}},
	"KR": {{"Seoul", "KR-11"}, {"Busan", "KR-26"}, {"Incheon", "KR-28"}},
	"TR": {{"Istanbul", "TR-34"}, {"Ankara", "TR-06"}, {"Izmir", "TR-35"}},
	"ID": {{"Jakarta", "ID-JK"}, {"Surabaya", "ID-JI"}, {"Bandung", "ID-JB"}},
	"ZA": {{"Johannesburg", "ZA-GP"}, {"Cape Town", "ZA-WC"}, {"Durban", "ZA-KZN"}},
	"NG": {{"Lagos", "NG-LA"}, {"Abuja", "NG-FC"}, {"Kano", "NG-KN"}},
})

// hourWeights are how many visits start in each hour of the (UTC) day,
// relative to the busiest; weekdayWeights the same by day of the week,
// from Sunday.
var (
	hourWeights    = [24]float64{0.35, 0.25, 0.18, 0.15, 0.15, 0.2, 0.3, 0.45, 0.6, 0.7, 0.75, 0.8, 0.85, 0.85, 0.8, 0.8, 0.85, 0.9, 0.95, 1, 1, 0.9, 0.7, 0.5}
	weekdayWeights = [7]float64{0.7, 1, 1, 0.98, 0.95, 0.9, 0.65}
)

// rhythmWeight is the weight of a visit starting at micros (Unix), in
// (0, 1]; hours blend into each other, so the curve has no steps.
func rhythmWeight(micros int64) float64 {
	t := time.UnixMicro(micros).UTC()
	h := float64(t.Hour()) + float64(t.Minute())/60
	lo := int(math.Floor(h))
	f := h - float64(lo)
	hw := hourWeights[lo]*(1-f) + hourWeights[(lo+1)%24]*f
	return hw * weekdayWeights[t.Weekday()]
}

// rhythmic draws a visitor's start in [from, from+span) (micros), by the
// daily and weekly rhythm and the growth: a start drawn evenly is kept
// with its weight's chance, else drawn again (the last draw is kept after
// 64).
func (g *Generator) rhythmic(from, span int64) int64 {
	var x int64
	for range 64 {
		x = g.rng.Int64N(span)
		w := rhythmWeight(from + x)
		if g.cfg.Growth > 0 {
			// Relative to the end of the window, where it is 1.
			w *= math.Exp(math.Log1p(g.cfg.Growth) * float64(from+x-g.end) / float64(24*time.Hour/time.Microsecond))
		}
		if g.rng.Float64() < w {
			break
		}
	}
	return x
}
