package insights

import "testing"

func TestRegionsOf(t *testing.T) {
	for country, want := range map[string]regions{
		"FR": {"Europe", "150", "Western Europe", "155"},
		"US": {"Americas", "019", "Northern America", "021"},
		"BR": {"Americas", "019", "South America", "005"},
		"MX": {"Americas", "019", "Central America", "013"},
		"JP": {"Asia", "142", "Eastern Asia", "030"},
		"IN": {"Asia", "142", "Southern Asia", "034"},
		"NG": {"Africa", "002", "Western Africa", "011"},
		"AU": {"Oceania", "009", "Australasia", "053"},
		"":   {notSet, notSet, notSet, notSet},
		"ZZ": {notSet, notSet, notSet, notSet},
		"EU": {notSet, notSet, notSet, notSet},
	} {
		if got := regionsOf(country); got != want {
			t.Errorf("regionsOf(%q) = %+v, want %+v", country, got, want)
		}
	}
}
