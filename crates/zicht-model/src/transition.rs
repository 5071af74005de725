//! Code lists of the 18+ transition check: after-18 funding and the BIG5 domains and statuses.

use crate::codes::code_list;

code_list! {
    /// How care after the 18th birthday is funded (reference `transition18.csv`).
    pub enum After18Funding: "after18_funding" {
        VerlengdeJeugdhulp = ("verlengde_jeugdhulp", "Verlengde jeugdhulp (Jeugdwet)"),
        Wmo = ("wmo", "Wmo-begeleiding"),
        MoBw = ("mo_bw", "MO/BW"),
        Zvw = ("zvw", "Zvw (GGZ-behandeling)"),
        Wlz = ("wlz", "Wlz"),
        Geen = ("geen", "Geen vervolgzorg nodig"),
        Onbekend = ("onbekend", "Onbekend / niet geregeld"),
    }
}

code_list! {
    /// One of the five life domains (BIG5) checked before a youth turns 18.
    pub enum Big5Domain: "big5_domain" {
        Support = ("support", "Support / netwerk"),
        Wonen = ("wonen", "Wonen"),
        WerkSchool = ("werk_school", "Werk en school"),
        InkomenSchulden = ("inkomen_schulden", "Inkomen en schulden"),
        ZorgOndersteuning = ("zorg_ondersteuning", "Zorg en ondersteuning"),
    }
}

code_list! {
    /// The status of one BIG5 domain.
    pub enum Big5Status: "big5_status" {
        OpOrde = ("op_orde", "Op orde"),
        Wankel = ("wankel", "Wankel"),
        NietOpOrde = ("niet_op_orde", "Niet op orde"),
        Onbekend = ("onbekend", "Onbekend"),
    }
}
