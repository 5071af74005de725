//! Care code lists: care types and stay groups, settings, legal bases, outflow, financing.

use crate::codes::{code_list, CodeList};

code_list! {
    /// The kind of care a youth receives in a placement (reference `care_types.csv`).
    pub enum CareType: "care_type" {
        Pleegzorg = ("pleegzorg", "Pleegzorg"),
        Gezinshuis = ("gezinshuis", "Gezinshuis"),
        KleinschaligWonen = ("kleinschalig_wonen", "Kleinschalige woonvoorziening"),
        OpenResidentieel = ("open_residentieel", "Open residentiele voorziening (O3M)"),
        JeugdhulpPlus = ("jeugdhulp_plus", "JeugdhulpPlus / gesloten jeugdhulp"),
        Crisisopvang = ("crisisopvang", "Crisisopvang"),
        Gezinspsychiatrie = ("gezinspsychiatrie", "Gezinspsychiatrie"),
        KlinischeGgz = ("klinische_ggz", "Klinische jeugd-GGZ"),
        LvbMultidisciplinair = ("lvb_multidisciplinair", "Multidisciplinaire voorziening LVB"),
        Forensisch = ("forensisch", "Forensische zorg met verblijf"),
        ExtraOndersteunendeVoorziening = ("extra_ondersteunende_voorziening", "Extra ondersteunende/beschermende voorziening"),
        Kamertraining = ("kamertraining", "Kamertraining / fasehuis"),
        Zorgboerderij = ("zorgboerderij", "Zorgboerderij / woonboerderij"),
        AmbulantIntensief = ("ambulant_intensief", "Intensieve ambulante hulp"),
    }
}

impl CareType {
    /// Whether the youth stays (sleeps) at the facility: verblijf (residential care).
    pub fn is_residential(self) -> bool {
        self != CareType::AmbulantIntensief
    }

    /// Whether this is closed care under a court authorisation.
    pub fn is_closed(self) -> bool {
        self == CareType::JeugdhulpPlus
    }

    /// The stay group used by `youth_in_care`.
    pub fn stay_group(self) -> StayGroup {
        match self {
            CareType::Pleegzorg => StayGroup::Pleegzorg,
            CareType::JeugdhulpPlus => StayGroup::JeugdhulpPlus,
            CareType::AmbulantIntensief => StayGroup::Ambulant,
            _ => StayGroup::AndereVerblijfzorg,
        }
    }
}

code_list! {
    /// Coarse grouping of care types: foster care, secure care, other residential care, and
    /// (outside verblijf) intensive outpatient help.
    pub enum StayGroup: "stay_group" {
        Pleegzorg = ("pleegzorg", "Pleegzorg"),
        JeugdhulpPlus = ("jeugdhulp_plus", "JeugdhulpPlus"),
        AndereVerblijfzorg = ("andere_verblijfzorg", "Andere verblijfszorg"),
        Ambulant = ("ambulant", "Ambulant"),
    }
}

code_list! {
    /// Where a small-scale facility sits: on an institution's grounds or in a neighbourhood.
    pub enum Setting: "setting" {
        OpTerrein = ("op_terrein", "Op terrein"),
        InDeWijk = ("in_de_wijk", "In de wijk"),
    }
}

code_list! {
    /// The legal framework of a placement (reference `legal_bases.csv`).
    pub enum LegalBasis: "legal_basis" {
        Vrijwillig = ("vrijwillig", "Vrijwillig kader"),
        Ots = ("ots", "Ondertoezichtstelling met machtiging uithuisplaatsing"),
        Voogdij = ("voogdij", "Voogdij"),
        MachtigingGesloten = ("machtiging_gesloten", "Machtiging gesloten jeugdhulp"),
        Spoedmachtiging = ("spoedmachtiging", "Spoedmachtiging gesloten jeugdhulp"),
        Strafrechtelijk = ("strafrechtelijk", "Strafrechtelijk kader / jeugdreclassering"),
    }
}

code_list! {
    /// Where a youth goes after a placement ends: uitstroom (outflow) destination
    /// (reference `outflow_destinations.csv`).
    pub enum OutflowDestination: "outflow_destination" {
        Thuis = ("thuis", "Terug naar huis"),
        Netwerk = ("netwerk", "Netwerk / familie"),
        Pleegzorg = ("pleegzorg", "Pleegzorg"),
        Gezinshuis = ("gezinshuis", "Gezinshuis"),
        KleinschaligWonen = ("kleinschalig_wonen", "Kleinschalige woonvoorziening"),
        OpenResidentieel = ("open_residentieel", "Open residentieel / O3M"),
        JeugdhulpPlus = ("jeugdhulp_plus", "JeugdhulpPlus"),
        KlinischeGgz = ("klinische_ggz", "Klinische (jeugd-)GGZ"),
        Jji = ("jji", "Justitiele jeugdinrichting"),
        Kamertraining = ("kamertraining", "Kamertraining / fasehuis"),
        ZelfstandigWonen = ("zelfstandig_wonen", "Zelfstandig wonen"),
        BegeleidWonen = ("begeleid_wonen", "Begeleid wonen"),
        MoBw = ("mo_bw", "Maatschappelijke opvang / beschermd wonen"),
        WlzInstelling = ("wlz_instelling", "Wlz-instelling"),
        VolwassenGgz = ("volwassen_ggz", "Volwassen GGZ"),
        Onbekend = ("onbekend", "Onbekend / uit beeld"),
        Anders = ("anders", "Anders"),
    }
}

code_list! {
    /// Uitstroomprofiel (outflow profile) 1-4: how much support a youth needs when leaving
    /// residential care, from light support (1) to long-term 24-hour care (4).
    pub enum OutflowProfile: "outflow_profile" {
        P1 = ("1", "Uitstroomprofiel 1"),
        P2 = ("2", "Uitstroomprofiel 2"),
        P3 = ("3", "Uitstroomprofiel 3"),
        P4 = ("4", "Uitstroomprofiel 4"),
    }
}

impl OutflowProfile {
    /// The profile number, 1 to 4.
    pub fn number(self) -> i16 {
        match self {
            OutflowProfile::P1 => 1,
            OutflowProfile::P2 => 2,
            OutflowProfile::P3 => 3,
            OutflowProfile::P4 => 4,
        }
    }

    /// The profile with this number, if it is 1 to 4.
    pub fn from_number(number: i64) -> Option<Self> {
        Self::ALL
            .get(usize::try_from(number).ok()?.checked_sub(1)?)
            .copied()
    }
}

code_list! {
    /// How a facility's places are financed.
    pub enum Financing: "financing" {
        Beschikbaarheid = ("beschikbaarheid", "Beschikbaarheidsfinanciering"),
        Capaciteit = ("capaciteit", "Capaciteitsfinanciering"),
        Pxq = ("pxq", "P x Q"),
    }
}
