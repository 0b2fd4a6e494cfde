"""What the public reads, in Kyrgyz, Russian and English: one table for every page of the site.

Same style as station/texts.py and central/serverroom/texts.py: plain words,
and every refusal says what to do next.  `{placeholders}` are filled by `say`.
Numbers are written as readers of each language expect: "2 431" and "12,34 %"
in Kyrgyz and Russian, "2,431" and "12.34%" in English.
"""

from __future__ import annotations

from typing import Literal

Lang = Literal["ky", "ru", "en"]
LANGS: tuple[Lang, ...] = ("ky", "ru", "en")
LANG_NAMES: dict[Lang, str] = {"ky": "Кыргызча", "ru": "Русский", "en": "English"}
NBSP = "\u00a0"

TEXTS: dict[str, dict[Lang, str]] = {
    # --- frame --------------------------------------------------------------------------
    "site_title": {
        "ky": "Шайлоонун жыйынтыктары",
        "ru": "Итоги выборов",
        "en": "Election results",
    },
    "cec": {
        "ky": "Кыргыз Республикасынын Шайлоо жана референдум өткөрүү боюнча борбордук комиссиясы",
        "ru": "Центральная комиссия по выборам и проведению референдумов Кыргызской Республики",
        "en": "Central Commission for Elections and Referendums of the Kyrgyz Republic",
    },
    "skip": {"ky": "Негизги мазмунга өтүү", "ru": "Перейти к содержимому", "en": "Skip to content"},
    "nav_label": {"ky": "Бөлүмдөр", "ru": "Разделы", "en": "Sections"},
    "nav_results": {"ky": "Жыйынтыктар", "ru": "Результаты", "en": "Results"},
    "nav_check": {"ky": "Протоколду текшерүү", "ru": "Проверить протокол", "en": "Check a report"},
    "nav_data": {"ky": "Ачык маалыматтар", "ru": "Открытые данные", "en": "Open data"},
    "language": {"ky": "Тил", "ru": "Язык", "en": "Language"},
    "crumbs": {"ky": "Сиз турган жер", "ru": "Вы здесь", "en": "You are here"},
    "live_updated": {
        "ky": "Жаңы маалыматтар келди: {time}",
        "ru": "Получены новые данные: {time}",
        "en": "New figures arrived: {time}",
    },
    "live_failed": {
        "ky": "Жаңыртуу үзгүлтүккө учурады; баракты кайра жүктөңүз.",
        "ru": "Обновление прервалось; перезагрузите страницу.",
        "en": "Live updates stopped; reload the page.",
    },
    "footer_source": {
        "ky": "Бул жердеги ар бир сан шайлоо участокторунун кол коюлган отчётторунан алынган. "
        "Ар бир участоктун барагында анын кол коюлган билдирүүлөрүн жүктөп алып, "
        "өзүңүз текшере аласыз.",
        "ru": "Каждое число здесь взято из подписанных отчётов избирательных участков. "
        "На странице каждого участка можно скачать его подписанные сообщения "
        "и проверить их самостоятельно.",
        "en": "Every number here comes from the polling stations' signed reports. Each "
        "station's page lets you download its signed messages and check them yourself.",
    },
    "version_label": {
        "ky": "Жарыяланган версия",
        "ru": "Опубликованная версия",
        "en": "Published version",
    },
    "yes": {"ky": "ооба", "ru": "да", "en": "yes"},
    "no": {"ky": "жок", "ru": "нет", "en": "no"},
    "same": {"ky": "дал келет", "ru": "совпадает", "en": "same"},
    "differs": {"ky": "АЙЫРМАЛАНАТ", "ru": "РАСХОДИТСЯ", "en": "DIFFERS"},
    "n_of": {"ky": "{of} ичинен {n}", "ru": "{n} из {of}", "en": "{n} of {of}"},
    "no_data": {"ky": "Маалымат жок", "ru": "Нет данных", "en": "No data"},
    "show_table": {"ky": "Таблица түрүндө", "ru": "Показать таблицей", "en": "Show as a table"},
    "download": {"ky": "Жүктөп алуу", "ru": "Скачать", "en": "Download"},
    "open": {"ky": "ачык", "ru": "открыто", "en": "open"},
    # --- levels ---------------------------------------------------------------------------
    "level_nation": {"ky": "Республика", "ru": "Республика", "en": "Nation"},
    "level_nation_short": {"ky": "Республика", "ru": "Республика", "en": "Nation"},
    "level_region": {"ky": "Облус / шаар", "ru": "Область / город", "en": "Region"},
    "level_district": {"ky": "Шайлоо округу", "ru": "Избирательный округ", "en": "District"},
    "level_commission": {
        "ky": "Аймактык шайлоо комиссиясы (АШК)",
        "ru": "Территориальная избирательная комиссия (ТИК)",
        "en": "Territorial election commission",
    },
    "level_station": {
        "ky": "Шайлоо участогу",
        "ru": "Избирательный участок",
        "en": "Polling station",
    },
    "level_nation_plural": {"ky": "Республика", "ru": "Республика", "en": "Nation"},
    "level_region_plural": {
        "ky": "Облустар жана шаарлар",
        "ru": "Области и города",
        "en": "Regions",
    },
    "level_district_plural": {
        "ky": "Шайлоо округдары",
        "ru": "Избирательные округа",
        "en": "Districts",
    },
    "level_commission_plural": {
        "ky": "Аймактык шайлоо комиссиялары",
        "ru": "Территориальные избирательные комиссии",
        "en": "Territorial commissions",
    },
    "level_station_plural": {
        "ky": "Шайлоо участоктору",
        "ru": "Избирательные участки",
        "en": "Polling stations",
    },
    "nation_name": {
        "ky": "Кыргыз Республикасы",
        "ru": "Кыргызская Республика",
        "en": "Kyrgyz Republic",
    },
    "station_title": {
        "ky": "№{number} шайлоо участогу",
        "ru": "Избирательный участок №{number}",
        "en": "Polling station No. {number}",
    },
    # --- home and status --------------------------------------------------------------------
    "home_title": {"ky": "Шайлоонун жыйынтыктары", "ru": "Итоги голосования", "en": "Results"},
    "results_title": {
        "ky": "Добуш берүүнүн жыйынтыктары",
        "ru": "Результаты голосования",
        "en": "Results by contest",
    },
    "status_title": {"ky": "Эсептөөнүн жүрүшү", "ru": "Ход подсчёта", "en": "Count progress"},
    "not_published": {
        "ky": "Жыйынтыктар азырынча жарыялана элек. Участоктордон маалымат келгенде бул барак өзү "
        "жаңыртылат.",
        "ru": "Результаты ещё не опубликованы. Когда поступят данные участков, страница обновится "
        "сама.",
        "en": "No results have been published yet. This page updates itself when stations report.",
    },
    "stations_delivered": {
        "ky": "Жыйынтык отчётун жөнөткөн участоктор",
        "ru": "Участков, передавших итоговые отчёты",
        "en": "Stations that reported their final count",
    },
    "stations_turnout": {
        "ky": "Катышуу маалыматын берген участоктор",
        "ru": "Участков, сообщивших явку",
        "en": "Stations reporting turnout",
    },
    "last_update": {"ky": "Акыркы жаңыртуу", "ru": "Последнее обновление", "en": "Last update"},
    "latest_report": {
        "ky": "Акыркы кол коюлган отчёт",
        "ru": "Последний подписанный отчёт",
        "en": "Latest signed report",
    },
    # --- turnout ----------------------------------------------------------------------------
    "turnout_title": {"ky": "Шайлоочулардын катышуусу", "ru": "Явка избирателей", "en": "Turnout"},
    "turnout_now": {"ky": "Азыркы катышуу", "ru": "Явка сейчас", "en": "Turnout now"},
    "turnout_voted": {"ky": "Добуш бергендер", "ru": "Проголосовали", "en": "Voted"},
    "of_registered": {
        "ky": "(тизмеде {n} шайлоочу)",
        "ru": "(из {n} избирателей в списках)",
        "en": "(of {n} registered voters)",
    },
    "ident_face": {
        "ky": "Жүзү боюнча таанылган",
        "ru": "Опознаны по лицу",
        "en": "Identified by face",
    },
    "ident_document": {
        "ky": "Документ боюнча киргизилген",
        "ru": "Допущены по документу",
        "en": "Admitted by document",
    },
    "ident_mobile": {"ky": "Көчмө урна", "ru": "Переносной ящик", "en": "Mobile ballot box"},
    "ident_stations": {
        "ky": "Идентификация отчётун берген участоктор",
        "ru": "Участков с отчётом об идентификации",
        "en": "Stations with an identification report",
    },
    "chart_turnout_title": {
        "ky": "Күн ичиндеги катышуу",
        "ru": "Явка в течение дня",
        "en": "Turnout over the day",
    },
    "chart_turnout_desc": {
        "ky": "Ар бир сааттын аягына карата добуш бергендердин үлүшү ({n} чекит).",
        "ru": "Доля проголосовавших к концу каждого часа ({n} точек).",
        "en": "Share of registered voters who had voted by the end of each hour ({n} points).",
    },
    "by_end_of_hour": {"ky": "{hour}:59 чейин", "ru": "к {hour}:59", "en": "by {hour}:59"},
    "col_hour": {"ky": "Саат", "ru": "Час", "en": "Hour"},
    "col_voted": {"ky": "Добуш бергендер", "ru": "Проголосовали", "en": "Voted"},
    "col_turnout": {"ky": "Катышуу", "ru": "Явка", "en": "Turnout"},
    "col_reported": {
        "ky": "Маалымат берген участоктор",
        "ru": "Сообщили участков",
        "en": "Stations reporting",
    },
    "turnout_bin_0": {"ky": "20 %дан аз", "ru": "менее 20 %", "en": "under 20%"},
    "turnout_bin_1": {"ky": "20–40 %", "ru": "20–40 %", "en": "20–40%"},
    "turnout_bin_2": {"ky": "40–60 %", "ru": "40–60 %", "en": "40–60%"},
    "turnout_bin_3": {"ky": "60–80 %", "ru": "60–80 %", "en": "60–80%"},
    "turnout_bin_4": {"ky": "80 % жана андан көп", "ru": "80 % и более", "en": "80% and over"},
    "map_turnout_title": {
        "ky": "Облустар жана шаарлар боюнча катышуу",
        "ru": "Явка по областям и городам",
        "en": "Turnout by region",
    },
    "map_leader_title": {
        "ky": "{contest}: облустар боюнча алдыда бараткандар",
        "ru": "{contest}: лидеры по областям",
        "en": "{contest}: who leads in each region",
    },
    "map_desc": {
        "ky": "Схемалык карта; ошол эле сандар төмөнкү таблицада.",
        "ru": "Схематическая карта; те же числа — в таблице ниже.",
        "en": "A schematic map; the same numbers are in the table below.",
    },
    "map_note": {
        "ky": "Схемалык карта (чек аралар так эмес). Облусту басып, анын барагына өтүңүз.",
        "ru": "Схематическая карта (границы упрощены). Нажмите на область, чтобы открыть её "
        "страницу.",
        "en": "Schematic map (borders simplified). Select a region to open its page.",
    },
    "map_leader_note": {
        "ky": "Түс — облуста эң көп добуш алган; толук кол менен саноо болсо ошол, болбосо АСУнун "
        "алдын ала эсеби.",
        "ru": "Цвет — кто набрал больше всех голосов в области: по ручному подсчёту, если он "
        "завершён, иначе по предварительным данным АСУ.",
        "en": "Colour: who has the most votes in the region, by the manual count once it is "
        "complete there, else by the preliminary ASU count.",
    },
    # --- contests -------------------------------------------------------------------------
    "rules_party_list": {
        "ky": "{seats} мандат; өтүү босогосу — {threshold} % (негизи: {base}); "
        "мандаттарды бөлүштүрүү: {method}.",
        "ru": "{seats} мандатов; проходной барьер — {threshold} % (база: {base}); "
        "распределение мандатов: {method}.",
        "en": "{seats} seats; threshold {threshold}% of {base}; allocation: {method}.",
    },
    "rules_plurality_one": {
        "ky": "Эң көп добуш алган талапкер шайланат.",
        "ru": "Избирается кандидат, набравший больше всех голосов.",
        "en": "The candidate with the most votes wins.",
    },
    "rules_plurality": {
        "ky": "Эң көп добуш алган {seats} талапкер шайланат.",
        "ru": "Избираются {seats} кандидат(а), набравшие больше всех голосов.",
        "en": "The {seats} candidate(s) with the most votes win.",
    },
    "rules_majority": {
        "ky": "Шайлануу үчүн бюллетендердин {percent} %дан көбү керек, болбосо экинчи тур.",
        "ru": "Для избрания нужно более {percent} % бюллетеней, иначе второй тур.",
        "en": "A winner needs more than {percent}% of the ballots, else a runoff.",
    },
    "rules_referendum": {
        "ky": "Катышуу {turnout} %дан ашса жарактуу; бюллетендердин {percent} %дан көбү «ооба» "
        "болсо кабыл алынат.",
        "ru": "Действителен при явке более {turnout} %; принят, если «да» — более {percent} % "
        "бюллетеней.",
        "en": "Valid if turnout exceeds {turnout}%; passes with more than {percent}% of ballots "
        "for yes.",
    },
    "badge_prelim": {"ky": "Алдын ала", "ru": "Предварительно", "en": "Preliminary"},
    "badge_final": {"ky": "Акыркы", "ru": "Окончательно", "en": "Final"},
    "source_asu": {
        "ky": "автоматтык эсептөөчү урналар (АСУ)",
        "ru": "автоматически считывающие урны (АСУ)",
        "en": "automatic ballot counting boxes (ASU)",
    },
    "source_manual": {
        "ky": "кол менен саноонун протоколдору",
        "ru": "протоколы ручного подсчёта",
        "en": "manual count protocols",
    },
    "short_asu": {"ky": "АСУ", "ru": "АСУ", "en": "ASU"},
    "short_manual": {"ky": "Кол менен", "ru": "Ручной", "en": "Manual"},
    "stations_counted": {
        "ky": "Эсептелген участоктор:",
        "ru": "Подсчитано участков:",
        "en": "Stations counted:",
    },
    "no_count_asu": {
        "ky": "АСУнун жыйынтык отчёттору азырынча келе элек.",
        "ru": "Итоговые отчёты АСУ ещё не поступили.",
        "en": "No ASU counts have arrived yet.",
    },
    "no_count_manual": {
        "ky": "Кол менен саноонун протоколдору азырынча киргизиле элек.",
        "ru": "Протоколы ручного подсчёта ещё не введены.",
        "en": "No manual count protocols have been entered yet.",
    },
    "tally_caption": {
        "ky": "Добуштар: {source}",
        "ru": "Голоса: {source}",
        "en": "Votes: {source}",
    },
    "col_option": {"ky": "Тандоо", "ru": "Вариант", "en": "Choice"},
    "col_votes": {"ky": "Добуштар", "ru": "Голоса", "en": "Votes"},
    "col_share": {"ky": "Үлүшү", "ru": "Доля", "en": "Share"},
    "base_label": {"ky": "Негиз: {base}", "ru": "База: {base}", "en": "Base: {base}"},
    "base_valid_votes": {
        "ky": "жарактуу добуштар",
        "ru": "действительные голоса",
        "en": "valid votes",
    },
    "base_party_votes": {
        "ky": "партияларга берилген добуштар",
        "ru": "голоса за партии",
        "en": "votes for parties",
    },
    "base_ballots": {"ky": "бардык бюллетендер", "ru": "все бюллетени", "en": "all ballots"},
    "base_registered": {
        "ky": "тизмедеги шайлоочулар",
        "ru": "избиратели в списках",
        "en": "registered voters",
    },
    "ballots_total": {"ky": "Бюллетендер", "ru": "Бюллетеней", "en": "Ballots"},
    "invalid_ballots": {
        "ky": "Жараксыз бюллетендер",
        "ru": "Недействительные бюллетени",
        "en": "Invalid ballots",
    },
    "chart_shares_title": {
        "ky": "Добуштардын үлүшү: {source}",
        "ru": "Доли голосов: {source}",
        "en": "Shares: {source}",
    },
    "chart_shares_desc": {
        "ky": "Ар бир тандоонун үлүшү ({base}); үзүк сызык — өтүү босогосу.",
        "ru": "Доля каждого варианта ({base}); пунктир — проходной барьер.",
        "en": "Each choice's share of {base}; the dashed line is the threshold.",
    },
    "threshold_line": {
        "ky": "босого {percent} %",
        "ru": "барьер {percent} %",
        "en": "threshold {percent}%",
    },
    "outcome_elsewhere": {
        "ky": "Жыйынтык (мандаттар, жеңүүчүлөр) бүткүл округ боюнча аныкталат.",
        "ru": "Итог (мандаты, победители) определяется по всему округу.",
        "en": "The outcome (seats, winners) is decided over the whole contest area.",
    },
    "outcome_incomplete": {
        "ky": "Бардык участоктор эсептеле элек: жыйынтык өзгөрүшү мүмкүн.",
        "ru": "Подсчитаны ещё не все участки: итог может измениться.",
        "en": "Not every station is counted yet: the outcome may change.",
    },
    "status_winner": {"ky": "Жеңүүчү", "ru": "Победитель", "en": "Winner"},
    "status_runoff": {"ky": "Экинчи тур", "ru": "Второй тур", "en": "Runoff"},
    "status_repeat_election": {
        "ky": "Кайра шайлоо («баарына каршы» алдыда)",
        "ru": "Повторные выборы («против всех» впереди)",
        "en": "Repeat election (against all leads)",
    },
    "status_tie": {
        "ky": "Добуштар тең: мыйзам боюнча чечилет",
        "ru": "Равенство голосов: решается по закону",
        "en": "Tie: decided as the law says",
    },
    "status_seats_allocated": {
        "ky": "Мандаттар бөлүштүрүлдү",
        "ru": "Мандаты распределены",
        "en": "Seats allocated",
    },
    "status_no_party_passed": {
        "ky": "Бир да партия босогодон өткөн жок",
        "ru": "Ни одна партия не прошла барьер",
        "en": "No party passed the threshold",
    },
    "status_passed": {"ky": "Кабыл алынды", "ru": "Принят", "en": "Passed"},
    "status_failed": {"ky": "Кабыл алынган жок", "ru": "Не принят", "en": "Not passed"},
    "status_invalid_turnout": {
        "ky": "Катышуу жетишсиз: референдум жараксыз",
        "ru": "Недостаточная явка: референдум недействителен",
        "en": "Turnout too low: the referendum is not valid",
    },
    "status_other": {"ky": "Жыйынтык", "ru": "Итог", "en": "Outcome"},
    "tied": {"ky": "тең добуш", "ru": "равные голоса", "en": "tied"},
    "flag_against_all_leads": {
        "ky": "«Баарына каршы» баарынан көп добуш алды.",
        "ru": "«Против всех» набрало больше всех.",
        "en": "Against all has more votes than any choice.",
    },
    "flag_no_party_passed": {
        "ky": "Бир да партия босогодон өткөн жок.",
        "ru": "Ни одна партия не прошла барьер.",
        "en": "No party passed the threshold.",
    },
    "flag_no_valid_votes": {
        "ky": "Жарактуу добуштар жок.",
        "ru": "Нет действительных голосов.",
        "en": "There are no valid votes.",
    },
    "flag_seat_tie_broken_by_rule": {
        "ky": "Акыркы мандат үчүн тең добуш эреже боюнча чечилди.",
        "ru": "Равенство за последний мандат разрешено по правилу.",
        "en": "A tie for the last seat was broken by the rule.",
    },
    "flag_list_too_short": {
        "ky": "Партиянын тизмесинде мандаттан аз талапкер бар.",
        "ru": "В списке партии меньше кандидатов, чем мандатов.",
        "en": "A party won more seats than it has candidates.",
    },
    "flag_gender_quota_short": {
        "ky": "Тизмеде гендердик квотага жетиштүү талапкер жок.",
        "ru": "В списке не хватает кандидатов для гендерной квоты.",
        "en": "A list has too few candidates of one gender for the quota.",
    },
    "flag_more_voted_than_registered": {
        "ky": "Тизмедегиден көп шайлоочу добуш берген: текшерилүүдө.",
        "ru": "Проголосовало больше, чем в списках: проверяется.",
        "en": "More voted than are registered: under review.",
    },
    "flag_more_ballots_than_voters": {
        "ky": "Бюллетендер идентификацияланган шайлоочулардан көп: текшерилүүдө.",
        "ru": "Бюллетеней больше, чем идентифицированных избирателей: проверяется.",
        "en": "More ballots than identified voters: under review.",
    },
    "seats_caption": {"ky": "Мандаттар", "ru": "Мандаты", "en": "Seats"},
    "col_party": {"ky": "Партия", "ru": "Партия", "en": "Party"},
    "col_seats": {"ky": "Мандаттар", "ru": "Мандатов", "en": "Seats"},
    "col_elected": {
        "ky": "Шайланган талапкерлер",
        "ru": "Избранные кандидаты",
        "en": "Elected candidates",
    },
    "checks_caption": {
        "ky": "Колдонулган эрежелер",
        "ru": "Применённые правила",
        "en": "Rules applied",
    },
    "col_subject": {"ky": "Ким / эмне", "ru": "Кто / что", "en": "Subject"},
    "col_rule": {"ky": "Эреже", "ru": "Правило", "en": "Rule"},
    "col_count_base": {"ky": "Сан / негиз", "ru": "Число / база", "en": "Count / base"},
    "col_share_floor": {
        "ky": "Үлүшү (төмөн тегеректелген)",
        "ru": "Доля (с округлением вниз)",
        "en": "Share (rounded down)",
    },
    "col_threshold": {"ky": "Чек", "ru": "Порог", "en": "Threshold"},
    "col_met": {"ky": "Аткарылды", "ru": "Выполнено", "en": "Met"},
    "rule_threshold": {"ky": "өтүү босогосу", "ru": "проходной барьер", "en": "threshold"},
    "rule_majority": {"ky": "көпчүлүк", "ru": "большинство", "en": "majority"},
    "rule_turnout": {"ky": "катышуу", "ru": "явка", "en": "turnout"},
    "rule_pass": {"ky": "кабыл алуу", "ru": "принятие", "en": "passing"},
    "children_caption": {
        "ky": "{level}: катышуу жана алдыдагылар",
        "ru": "{level}: явка и лидеры",
        "en": "{level}: turnout and who leads",
    },
    "no_leader": {"ky": "тең", "ru": "равенство", "en": "tie"},
    "district_contests": {
        "ky": "Бир мандаттуу округдар",
        "ru": "Одномандатные округа",
        "en": "Single-member districts",
    },
    "col_contest": {"ky": "Шайлоо", "ru": "Выборы", "en": "Contest"},
    "col_leader": {"ky": "Алдыда", "ru": "Лидирует", "en": "Leading"},
    # --- station page -----------------------------------------------------------------------
    "station_name": {"ky": "Аталышы", "ru": "Название", "en": "Name"},
    "station_address": {"ky": "Дареги", "ru": "Адрес", "en": "Address"},
    "station_registered": {
        "ky": "Тизмедеги шайлоочулар",
        "ru": "Избирателей в списке",
        "en": "Registered voters",
    },
    "published_title": {
        "ky": "Жарыяланган сандар",
        "ru": "Опубликованные числа",
        "en": "Published numbers",
    },
    "published_note": {
        "ky": "Бул участок үчүн жарыяланган жыйынтыктарда турган сандар.",
        "ru": "Числа по этому участку в опубликованных итогах.",
        "en": "This station's numbers as they stand in the published results.",
    },
    "reports_title": {
        "ky": "Участок кол койгон отчёттор",
        "ru": "Отчёты, подписанные участком",
        "en": "What the station signed",
    },
    "reports_note": {
        "ky": "Түзмөктүн ачкычы менен кол коюлган билдирүүлөр, БШКга келген түрүндө.",
        "ru": "Сообщения, подписанные ключом устройства, в том виде, в каком их получил ЦИК.",
        "en": "Messages signed with the device's key, exactly as the CEC received them.",
    },
    "conflict": {
        "ky": "Эскертүү: ушул участоктон №{seq} номерлүү башка мазмундагы кол коюлган билдирүү "
        "келди",
        "ru": "Внимание: от участка пришло другое подписанное сообщение с номером {seq}",
        "en": "Warning: another signed message with number {seq} came from this station",
    },
    "zero_title": {
        "ky": "Нөлдүк отчёт (ачылганда)",
        "ru": "Нулевой отчёт (при открытии)",
        "en": "Zero report (at opening)",
    },
    "zero_ok": {
        "ky": "бардык эсептегичтер нөл",
        "ru": "все счётчики равны нулю",
        "en": "every counter is zero",
    },
    "zero_not_ok": {"ky": "НӨЛ ЭМЕС", "ru": "НЕ НУЛЕВОЙ", "en": "NOT ZERO"},
    "none_received": {
        "ky": "Азырынча келе элек.",
        "ru": "Пока не поступал.",
        "en": "None received yet.",
    },
    "signed_at": {"ky": "Кол коюлду", "ru": "Подписан", "en": "Signed"},
    "turnout_reports_title": {
        "ky": "Катышуу боюнча маалыматтар",
        "ru": "Сведения о явке",
        "en": "Turnout reports",
    },
    "col_as_of": {"ky": "Абал боюнча", "ru": "По состоянию на", "en": "As of"},
    "col_counted": {"ky": "Эсепке алынды", "ru": "Учтено", "en": "Counted"},
    "col_message": {"ky": "Билдирүү", "ru": "Сообщение", "en": "Message"},
    "ident_reports_title": {
        "ky": "Шайлоочуларды идентификациялоо боюнча отчёттор",
        "ru": "Отчёты об идентификации избирателей",
        "en": "Identification reports",
    },
    "col_phase": {"ky": "Отчёттун түрү", "ru": "Вид отчёта", "en": "Report"},
    "phase_first": {"ky": "Биринчи", "ru": "Первый", "en": "First"},
    "phase_final": {"ky": "Жыйынтыктоочу", "ru": "Итоговый", "en": "Final"},
    "phase_zero": {"ky": "Нөлдүк", "ru": "Нулевой", "en": "Zero"},
    "asu_reports_title": {
        "ky": "Автоматтык эсептөөчү урнанын (АСУ) жыйынтык отчёту",
        "ru": "Итоговый отчёт автоматически считывающей урны (АСУ)",
        "en": "ASU final report",
    },
    "sheets": {"ky": "эсептелген барактар:", "ru": "подсчитано листов:", "en": "sheets counted:"},
    "deferred_sheets": {
        "ky": "Алардын ичинен өзүнчө (кийин) эсептелгени: {n}. АСУ урнасы бузулуп, шайлоочулар "
        "запастагы кадимки урнага добуш беришкен; анын барактары АСУ кайра иштегенде "
        "эсептелген. Алар жалпы жыйынтыкка кирет.",
        "ru": "Из них подсчитано отдельно (отложенная партия): {n}. Урна АСУ выходила из строя; "
        "избиратели голосовали в запасной обычный ящик, и его листы отсканированы, когда АСУ "
        "снова заработала. Они включены в итоги.",
        "en": "Of these, counted in a deferred batch: {n}. The ballot box (ASU) had failed; "
        "voters went on voting into a spare ordinary box, and its sheets were scanned when "
        "the ASU was back. They are included in the totals.",
    },
    "station_listed_problem": {
        "ky": "Участок белгилеген көйгөй",
        "ru": "Участок сообщил о проблеме",
        "en": "The station listed a problem",
    },
    "signed_vs_published": {
        "ky": "кол коюлган жана жарыяланган",
        "ru": "подписано и опубликовано",
        "en": "signed and published",
    },
    "col_line": {"ky": "Сап", "ru": "Строка", "en": "Line"},
    "col_signed": {"ky": "Кол коюлган", "ru": "Подписано", "en": "Signed"},
    "col_published": {"ky": "Жарыяланган", "ru": "Опубликовано", "en": "Published"},
    "col_same": {"ky": "Салыштыруу", "ru": "Сравнение", "en": "Comparison"},
    "counted": {"ky": "эсепке алынды", "ru": "учтено", "en": "counted"},
    "not_counted": {"ky": "эсепке алынган жок", "ru": "не учтено", "en": "not counted"},
    "test_mode": {
        "ky": "сыноо режими (эсепке алынбайт)",
        "ru": "тестовый режим (не учитывается)",
        "en": "test mode (never counted)",
    },
    "signed_message": {"ky": "№{seq} билдирүү", "ru": "сообщение №{seq}", "en": "message {seq}"},
    "manual_title": {
        "ky": "Кол менен саноонун протоколу",
        "ru": "Протокол ручного подсчёта",
        "en": "Manual count protocol",
    },
    "no_manual": {
        "ky": "Протокол азырынча киргизиле элек.",
        "ru": "Протокол ещё не введён.",
        "en": "The protocol has not been entered yet.",
    },
    "manual_version": {
        "ky": "{versions} версиянын {version}-версиясы",
        "ru": "Версия {version} из {versions}",
        "en": "Version {version} of {versions}",
    },
    "entered_at": {"ky": "киргизилди", "ru": "введён", "en": "entered"},
    "reason": {"ky": "себеби", "ru": "причина", "en": "reason"},
    "scan_link": {"ky": "Протоколдун сканы", "ru": "Скан протокола", "en": "Scan of the protocol"},
    "scan_alt": {
        "ky": "Кол менен саноо протоколунун сканы",
        "ru": "Скан протокола ручного подсчёта",
        "en": "Scan of the manual count protocol",
    },
    "line_received": {
        "ky": "Алынган бюллетендер",
        "ru": "Получено бюллетеней",
        "en": "Ballots received",
    },
    "line_issued": {
        "ky": "Берилген бюллетендер",
        "ru": "Выдано бюллетеней",
        "en": "Ballots issued",
    },
    "line_spoiled": {
        "ky": "Бузулган бюллетендер",
        "ru": "Испорчено бюллетеней",
        "en": "Ballots spoiled",
    },
    "line_ballots": {
        "ky": "Урнадагы бюллетендер",
        "ru": "Бюллетеней в урнах",
        "en": "Ballots in the boxes",
    },
    "line_invalid": {
        "ky": "Жараксыз бюллетендер",
        "ru": "Недействительных бюллетеней",
        "en": "Invalid ballots",
    },
    "line_votes": {"ky": "Добуштар", "ru": "Голоса", "en": "Votes"},
    "line_preference": {
        "ky": "Артыкчылык добуштары",
        "ru": "Преференции",
        "en": "Preference votes",
    },
    "recon_title": {
        "ky": "АСУ менен салыштыруу",
        "ru": "Сверка с АСУ",
        "en": "Compared with the ASU count",
    },
    "no_recon": {
        "ky": "Азырынча салыштырыла элек.",
        "ru": "Сверка ещё не проводилась.",
        "en": "Not compared yet.",
    },
    "recon_match": {"ky": "дал келет", "ru": "совпадает", "en": "match"},
    "recon_within": {
        "ky": "айырма бар, бирок уруксат берилген чектин ичинде",
        "ru": "есть расхождения в допустимых пределах",
        "en": "differences within the allowed limits",
    },
    "recon_difference": {
        "ky": "АЙЫРМА ЧЕКТЕН АШАТ — БШК текшерүүдө",
        "ru": "РАСХОЖДЕНИЕ СВЕРХ ДОПУСТИМОГО — проверяется ЦИК",
        "en": "DIFFERENCE BEYOND THE LIMITS — under review by the CEC",
    },
    "recon_no_asu": {
        "ky": "АСУнун эсеби жок",
        "ru": "нет данных АСУ",
        "en": "no ASU count to compare with",
    },
    "col_difference": {"ky": "Айырма", "ru": "Разница", "en": "Difference"},
    "col_exceeded": {"ky": "Чектен ашат", "ru": "Сверх допустимого", "en": "Beyond the limits"},
    "alerts_title": {"ky": "Эскертүүлөр", "ru": "Предупреждения", "en": "Alerts"},
    "no_alerts": {"ky": "Эскертүү жок.", "ru": "Предупреждений нет.", "en": "No alerts."},
    "col_raised": {"ky": "Качан", "ru": "Когда", "en": "Raised"},
    "col_kind": {"ky": "Түрү", "ru": "Вид", "en": "Kind"},
    "col_severity": {"ky": "Маанилүүлүгү", "ru": "Важность", "en": "Severity"},
    "col_detail": {"ky": "Эмне болду", "ru": "Что произошло", "en": "Detail"},
    "col_resolved": {"ky": "Чечилди", "ru": "Закрыто", "en": "Resolved"},
    "col_received": {"ky": "Келди", "ru": "Получено", "en": "Received"},
    "messages_title": {
        "ky": "Бардык кол коюлган билдирүүлөр",
        "ru": "Все подписанные сообщения",
        "en": "Every signed message",
    },
    "messages_note": {
        "ky": "Ар бир билдирүү түзмөктүн кол тамгасы менен, өзгөртүүсүз. Текшерүү тартиби: «Ачык "
        "маалыматтар».",
        "ru": "Каждое сообщение — с подписью устройства, без изменений. Как проверить — в "
        "«Открытых данных».",
        "en": "Each message with the device's signature, unchanged. How to check them: see Open "
        "data.",
    },
    "all_messages": {
        "ky": "Баарын бир файл менен (JSONL)",
        "ru": "Все одним файлом (JSONL)",
        "en": "All in one file (JSONL)",
    },
    "kind_asu_report": {"ky": "АСУнун отчёту", "ru": "отчёт АСУ", "en": "ASU report"},
    "kind_identification_report": {
        "ky": "идентификация отчёту",
        "ru": "отчёт об идентификации",
        "en": "identification report",
    },
    "kind_turnout": {"ky": "катышуу маалыматы", "ru": "сведения о явке", "en": "turnout report"},
    "kind_heartbeat": {"ky": "абал билдирүүсү", "ru": "сигнал состояния", "en": "heartbeat"},
    "kind_log_digest": {"ky": "журналдын хэши", "ru": "хэш журнала", "en": "log digest"},
    # --- find a station ---------------------------------------------------------------------
    "find_title": {"ky": "Участокту табуу", "ru": "Найти участок", "en": "Find a polling station"},
    "find_label": {"ky": "Участоктун номери", "ru": "Номер участка", "en": "Station number"},
    "find_button": {"ky": "Табуу", "ru": "Найти", "en": "Find"},
    # --- check a report ---------------------------------------------------------------------
    "check_title": {"ky": "Отчётту текшерүү", "ru": "Проверка отчёта", "en": "Check a report"},
    "check_intro": {
        "ky": "Участоктун эшигине илинген басылма отчёттогу QR-коддорду сүрөткө тартып жүктөңүз "
        "(же алардын текстин чаптаңыз). Сайт кол тамганы БШКнын тамыр сертификаты менен "
        "текшерип, участок кол койгон сандарды жарыяланган сандар менен катар көрсөтөт.",
        "ru": "Сфотографируйте QR-коды печатного отчёта с двери участка и загрузите фото "
        "(или вставьте их текст). Сайт проверит подпись по корневому сертификату ЦИК и "
        "покажет числа, подписанные участком, рядом с опубликованными.",
        "en": "Photograph the QR codes of a printed report from a polling station's door and "
        "upload the photos (or paste their text). The site checks the signature against the "
        "CEC root certificate and shows the station's signed numbers beside the published ones.",
    },
    "check_photo_label": {
        "ky": "QR-коддордун сүрөттөрү",
        "ru": "Фотографии QR-кодов",
        "en": "Photos of the QR codes",
    },
    "check_photo_hint": {
        "ky": "PNG же JPEG, бардыгы {max} МБдан ашпасын. Бардык коддор бир же бир нече сүрөттө "
        "болсун.",
        "ru": "PNG или JPEG, всего не более {max} МБ. Все коды — на одном или нескольких фото.",
        "en": "PNG or JPEG, {max} MB in all at most. Every code on one photo or several.",
    },
    "check_text_label": {
        "ky": "же QR-коддордун тексти («SHAILOO-QR1 ...» менен башталат)",
        "ru": "или текст QR-кодов (начинается с «SHAILOO-QR1 ...»)",
        "en": "or the QR codes' text (starts with “SHAILOO-QR1 ...”)",
    },
    "check_button": {"ky": "Текшерүү", "ru": "Проверить", "en": "Check"},
    "check_disabled": {
        "ky": "Бул серверде отчётторду текшерүү күйгүзүлгөн эмес (БШКнын тамыр сертификаты жок).",
        "ru": "На этом сервере проверка отчётов не включена (нет корневого сертификата ЦИК).",
        "en": "Checking reports is not enabled on this server (no CEC root certificate).",
    },
    "check_ok_title": {
        "ky": "Кол тамга туура",
        "ru": "Подпись верна",
        "en": "The signature is valid",
    },
    "check_ok": {
        "ky": "Бул №{number} участоктун түзмөгү кол койгон {kind} (№{seq} билдирүү), эч "
        "өзгөрүүсүз.",
        "ru": "Это {kind} (сообщение №{seq}), подписанный устройством участка №{number}, без "
        "изменений.",
        "en": "This is the {kind} (message {seq}) signed by the device of station No. {number}, "
        "unchanged.",
    },
    "check_failed_title": {
        "ky": "Отчёт текшерүүдөн ӨТКӨН ЖОК",
        "ru": "Отчёт НЕ прошёл проверку",
        "en": "The report did NOT verify",
    },
    "check_failed": {
        "ky": "Коддор {station} участоктун {kind} (№{seq}) отчётуна таандык деп айтат, бирок "
        "алар түзмөк кол койгон нерсе эмес же толук эмес. Бул отчётко ишенбеңиз.",
        "ru": "Коды называют себя отчётом {kind} участка {station} (№{seq}), но это не то, что "
        "подписало устройство, или коды неполные. Не доверяйте этому отчёту.",
        "en": "The codes claim to be the {kind} of station {station} (message {seq}), but they "
        "are not what the device signed, or some are missing. Do not trust this report.",
    },
    "check_test_mode": {
        "ky": "Бул сыноо режиминде басылган отчёт: анын сандары жыйынтыкка кирбейт.",
        "ru": "Этот отчёт напечатан в тестовом режиме: его числа не входят в итоги.",
        "en": "This report was printed in test mode: its numbers never count.",
    },
    "check_received_same": {
        "ky": "БШК дал ушул билдирүүнү алган.",
        "ru": "ЦИК получил именно это сообщение.",
        "en": "The CEC received exactly this message.",
    },
    "check_received_different": {
        "ky": "ЭСКЕРТҮҮ: БШК ушул номер менен БАШКА билдирүү алган. Бул далил — БШКга кабарлаңыз.",
        "ru": "ВНИМАНИЕ: ЦИК получил под этим номером ДРУГОЕ сообщение. Это улика — сообщите в "
        "ЦИК.",
        "en": "WARNING: the CEC holds a DIFFERENT message with this number. This is evidence: "
        "tell the CEC.",
    },
    "check_not_received": {
        "ky": "БШК бул билдирүүнү азырынча алган эмес.",
        "ru": "ЦИК это сообщение ещё не получил.",
        "en": "The CEC has not received this message yet.",
    },
    "check_stored_message": {
        "ky": "БШК алган билдирүүнү жүктөп алуу",
        "ru": "Скачать сообщение, полученное ЦИК",
        "en": "Download the message the CEC received",
    },
    "check_not_final": {
        "ky": "Бул жыйынтыктоочу отчёт эмес: жарыяланган сандар участоктун кийинки отчётторунан "
        "алынат.",
        "ru": "Это не итоговый отчёт: опубликованные числа берутся из более поздних отчётов "
        "участка.",
        "en": "This is not a final report: the published figures come from the station's later "
        "reports.",
    },
    "check_lines_caption": {
        "ky": "Отчёттогу сандар жана жарыяланган сандар ({version}-версия)",
        "ru": "Числа отчёта и опубликованные числа (версия {version})",
        "en": "The report's numbers and the published ones (version {version})",
    },
    "check_ignored": {
        "ky": "Шайлоого тиешеси жок {n} QR-код эске алынган жок.",
        "ru": "Пропущено QR-кодов, не относящихся к выборам: {n}.",
        "en": "{n} QR codes that are not election reports were left out.",
    },
    "check_empty": {
        "ky": "Сүрөт же текст жок. QR-коддордун сүрөтүн тандаңыз же текстин чаптаңыз.",
        "ru": "Нет ни фото, ни текста. Выберите фото QR-кодов или вставьте их текст.",
        "en": "No photo and no text. Choose photos of the QR codes or paste their text.",
    },
    "check_bad_image": {
        "ky": "«{name}» файлын сүрөт катары окуу мүмкүн эмес. PNG же JPEG жүктөңүз.",
        "ru": "Файл «{name}» не читается как изображение. Загрузите PNG или JPEG.",
        "en": "The file “{name}” cannot be read as an image. Upload a PNG or JPEG.",
    },
    "check_no_codes": {
        "ky": "Отчёттун QR-коддору табылган жок. Коддор так жана толук көрүнгөндөй кайра тартыңыз.",
        "ru": "QR-коды отчёта не найдены. Сфотографируйте ещё раз, чтобы коды были чёткими и "
        "целиком.",
        "en": "No report QR codes were found. Take the photo again with the codes sharp and whole.",
    },
    "check_too_many": {
        "ky": "Файлдар өтө көп (эң көбү {max}).",
        "ru": "Слишком много файлов (не более {max}).",
        "en": "Too many files (at most {max}).",
    },
    "check_text_too_long": {
        "ky": "Текст өтө узун (эң көбү {max} белги).",
        "ru": "Текст слишком длинный (не более {max} символов).",
        "en": "The text is too long (at most {max} characters).",
    },
    "check_bad_form": {
        "ky": "Форма туура эмес жөнөтүлдү. Баракты жаңыртып, кайра аракет кылыңыз.",
        "ru": "Форма отправлена неправильно. Обновите страницу и попробуйте снова.",
        "en": "The form was not sent correctly. Reload the page and try again.",
    },
    "check_busy": {
        "ky": "Азыр текшерүүлөр өтө көп. Бир мүнөттөн кийин кайталаңыз.",
        "ru": "Сейчас слишком много проверок. Повторите через минуту.",
        "en": "Too many checks right now. Try again in a minute.",
    },
    # --- open data --------------------------------------------------------------------------
    "data_title": {"ky": "Ачык маалыматтар", "ru": "Открытые данные", "en": "Open data"},
    "data_intro": {
        "ky": "Бардык маалыматтар эркин жүктөлөт. Ар бир жарыяланган версиянын өз номери жана "
        "SHA-256 хэши бар; шайлоонун толук жазуусу менен ар бир санды өзүңүз кайра эсептеп, "
        "ар бир кол тамганы текшере аласыз.",
        "ru": "Все данные можно свободно скачать. У каждой опубликованной версии есть номер и "
        "хэш SHA-256; по полной записи выборов можно самостоятельно пересчитать каждое число "
        "и проверить каждую подпись.",
        "en": "Everything here is free to download. Each published version has a number and a "
        "SHA-256 hash; with the full election record you can recompute every number and "
        "check every signature yourself.",
    },
    "dl_results": {
        "ky": "Жарыяланган жыйынтыктар (JSON)",
        "ru": "Опубликованные итоги (JSON)",
        "en": "Published results (JSON)",
    },
    "dl_results_note": {
        "ky": "{version}-версия, жарыяланган байттар менен так ошондой",
        "ru": "версия {version}, байт в байт как опубликовано",
        "en": "version {version}, byte for byte as published",
    },
    "dl_nist": {
        "ky": "Жыйынтыктар NIST SP 1500-100 форматында (JSON)",
        "ru": "Итоги в формате NIST SP 1500-100 (JSON)",
        "en": "Results in NIST SP 1500-100 format (JSON)",
    },
    "dl_record": {
        "ky": "Шайлоонун толук жазуусу (tar.gz)",
        "ru": "Полная запись выборов (tar.gz)",
        "en": "The full election record (tar.gz)",
    },
    "dl_record_note": {
        "ky": "ар бир кол коюлган билдирүү, шайлоонун аныктамасы, сертификаттар, протоколдор жана "
        "сервер кол койгон мазмуну",
        "ru": "каждое подписанное сообщение, описание выборов, сертификаты, протоколы и "
        "подписанное сервером оглавление",
        "en": "every signed message, the election definition, certificates, protocols and a "
        "manifest signed by the server",
    },
    "dl_status": {"ky": "Абалы (JSON)", "ru": "Состояние (JSON)", "en": "Status (JSON)"},
    "dl_json": {
        "ky": "Республика боюнча (JSON)",
        "ru": "По республике (JSON)",
        "en": "Nation (JSON)",
    },
    "dl_openapi": {
        "ky": "API сүрөттөмөсү (OpenAPI)",
        "ru": "Описание API (OpenAPI)",
        "en": "API description (OpenAPI)",
    },
    "csv_title": {"ky": "CSV таблицалар", "ru": "Таблицы CSV", "en": "CSV tables"},
    "csv_note": {
        "ky": "Ар бир шайлоо жана ар бир деңгээл үчүн бир таблица: эки булак тең (АСУ жана кол "
        "менен саноо).",
        "ru": "Одна таблица на выборы и уровень: оба источника (АСУ и ручной подсчёт).",
        "en": "One table per contest and level, both sources (ASU and manual count).",
    },
    # --- errors -----------------------------------------------------------------------------
    "error_title": {
        "ky": "Барак ачылган жок",
        "ru": "Страница не открылась",
        "en": "Page not shown",
    },
    "back_home": {"ky": "Башкы баракка", "ru": "На главную", "en": "Back to the results"},
    "not_found": {
        "ky": "Мындай барак жок. Шилтемени текшериңиз же башкы барактан баштаңыз.",
        "ru": "Такой страницы нет. Проверьте ссылку или начните с главной.",
        "en": "There is no such page. Check the link or start from the results.",
    },
    "unit_not_found": {
        "ky": "Бул шайлоодо «{id}» деген {level} жок.",
        "ru": "В этих выборах нет объекта «{id}» ({level}).",
        "en": "This election has no {level} “{id}”.",
    },
    "station_number_not_found": {
        "ky": "№{number} шайлоо участогу бул шайлоодо жок. Номерди текшериңиз.",
        "ru": "Избирательного участка №{number} в этих выборах нет. Проверьте номер.",
        "en": "There is no polling station No. {number} in this election. Check the number.",
    },
    "bad_number": {
        "ky": "Участоктун номерин сан менен жазыңыз (мисалы, 1001).",
        "ru": "Введите номер участка цифрами (например, 1001).",
        "en": "Type the station number in digits (for example 1001).",
    },
    "bad_language": {
        "ky": "«{name}» тили жок. Кыргызча окуу үчүн басыңыз.",
        "ru": "Языка «{name}» нет. Нажмите, чтобы читать по-русски.",
        "en": "There is no language “{name}”. Select to read in English.",
    },
    "method_not_allowed": {
        "ky": "Бул барак мындай сурамды кабыл албайт.",
        "ru": "Эта страница не принимает такой запрос.",
        "en": "This page does not accept that kind of request.",
    },
    "upload_too_large": {
        "ky": "Жөнөтүлгөн файлдар өтө чоң (бардыгы {max} МБдан ашпасын).",
        "ru": "Отправленные файлы слишком велики (всего не более {max} МБ).",
        "en": "The files sent are too large ({max} MB in all at most).",
    },
    "bad_request": {
        "ky": "Сурам туура эмес: {detail}",
        "ru": "Неверный запрос: {detail}",
        "en": "Bad request: {detail}",
    },
    "not_published_yet": {
        "ky": "Жыйынтыктар азырынча жарыялана элек.",
        "ru": "Результаты ещё не опубликованы.",
        "en": "No results have been published yet.",
    },
    "record_unavailable": {
        "ky": "Шайлоонун жазуусу бул серверде берилбейт; БШКнын негизги сайтын колдонуңуз.",
        "ru": "Запись выборов на этом сервере не выдаётся; воспользуйтесь основным сайтом ЦИК.",
        "en": "The election record is not offered by this server; use the CEC's main site.",
    },
    "too_many_streams": {
        "ky": "Азыр жандуу жаңыртууларга туташуулар өтө көп. Баракты кийинчерээк жаңыртыңыз.",
        "ru": "Сейчас слишком много подключений к живым обновлениям. Обновите страницу позже.",
        "en": "Too many live-update connections right now. Reload the page later.",
    },
    "internal_error": {
        "ky": "Серверде ката кетти. Бир аздан кийин кайталаңыз.",
        "ru": "Ошибка на сервере. Повторите чуть позже.",
        "en": "Something went wrong on the server. Try again shortly.",
    },
}


def say(key: str, lang: Lang, **values: object) -> str:
    """The text for `key` in `lang`, placeholders filled."""
    return TEXTS[key][lang].format(**values)


def has(key: str) -> bool:
    return key in TEXTS


def fmt_int(value: object, lang: Lang) -> str:
    """A count as its readers write it: 2 431 (ky, ru) or 2,431 (en); anything else as is."""
    if isinstance(value, bool) or not isinstance(value, int):
        return "—" if value is None else str(value)
    text = f"{value:,}"
    return text if lang == "en" else text.replace(",", NBSP)


def fmt_pct(value: str | None, lang: Lang) -> str:
    """A published percent string ("12.34") as its readers write it: 12,34 % or 12.34%."""
    if value is None or value == "":
        return "—"
    return f"{value}%" if lang == "en" else f"{value.replace('.', ',')}{NBSP}%"
