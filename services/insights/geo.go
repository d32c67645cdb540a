package insights

import (
	"sync"

	"golang.org/x/text/language"
	"golang.org/x/text/language/display"
)

// GA4's continent and subContinent are the UN M49 regions a country is in:
// the five continents and their twenty-two subregions, with their codes
// (continentId "150", subContinentCode "155") and English names ("Europe",
// "Western Europe"), as golang.org/x/text's region data holds them.

var (
	m49Continents    = []string{"002", "009", "019", "142", "150"}
	m49SubContinents = []string{"011", "014", "015", "017", "018", "021", "029", "005", "013", "030", "034", "035", "039",
		"053", "054", "057", "061", "143", "145", "151", "154", "155"}
)

type regions struct{ continent, continentID, subContinent, subContinentCode string }

var regionCache sync.Map // country code → regions

// regionsOf is the M49 continent and subregion of an ISO 3166 country code,
// "(not set)" for what is unknown.
func regionsOf(country string) regions {
	if v, ok := regionCache.Load(country); ok {
		return v.(regions)
	}
	out := regions{notSet, notSet, notSet, notSet}
	if r, err := language.ParseRegion(country); err == nil && country != "" && r.IsCountry() {
		names := display.English.Regions()
		for _, code := range m49Continents {
			if c := language.MustParseRegion(code); c.Contains(r) {
				out.continent, out.continentID = names.Name(c), code
			}
		}
		for _, code := range m49SubContinents {
			if c := language.MustParseRegion(code); c.Contains(r) {
				out.subContinent, out.subContinentCode = names.Name(c), code
			}
		}
	}
	regionCache.Store(country, out)
	return out
}
