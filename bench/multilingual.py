"""Sentences written for the language check's tests and bench: 12 languages, long and short.

Each entry is (ISO 639-1 code, text). "Long" sentences are one to three full sentences; "short"
ones are 5-9 words, near the length where language ID starts to guess.
"""

LONG = [
    (
        "en",
        "Could you explain how a refrigerator keeps food cold? I have always wondered where the heat actually goes.",
    ),
    (
        "en",
        "The quarterly report shows that revenue grew by twelve percent, mostly because of strong "
        "sales in the northern region.",
    ),
    ("en", "Please write a short poem about the sea at night, with the moon reflected on the water."),
    (
        "fr",
        "Pouvez-vous m'expliquer comment fonctionne un réfrigérateur ? Je me suis toujours demandé où part la chaleur.",
    ),
    (
        "fr",
        "Le rapport trimestriel montre que le chiffre d'affaires a augmenté de douze pour cent grâce "
        "aux ventes du nord.",
    ),
    ("fr", "Écris un court poème sur la mer la nuit, avec la lune qui se reflète sur l'eau calme."),
    (
        "de",
        "Kannst du mir erklären, wie ein Kühlschrank das Essen kalt hält? Ich habe mich immer "
        "gefragt, wohin die Wärme geht.",
    ),
    (
        "de",
        "Der Quartalsbericht zeigt, dass der Umsatz um zwölf Prozent gestiegen ist, vor allem wegen "
        "der Verkäufe im Norden.",
    ),
    ("de", "Schreib bitte ein kurzes Gedicht über das Meer in der Nacht, in dem sich der Mond im Wasser spiegelt."),
    (
        "es",
        "¿Puedes explicarme cómo un refrigerador mantiene fría la comida? Siempre me he preguntado adónde va el calor.",
    ),
    (
        "es",
        "El informe trimestral muestra que los ingresos crecieron un doce por ciento, sobre todo por "
        "las ventas en el norte.",
    ),
    ("es", "Escribe un poema corto sobre el mar de noche, con la luna reflejada en el agua tranquila."),
    (
        "it",
        "Puoi spiegarmi come fa un frigorifero a mantenere il cibo freddo? Mi sono sempre chiesto dove vada il calore.",
    ),
    (
        "it",
        "La relazione trimestrale mostra che il fatturato è cresciuto del dodici per cento, "
        "soprattutto grazie alle vendite al nord.",
    ),
    ("it", "Scrivi una breve poesia sul mare di notte, con la luna che si riflette sull'acqua."),
    ("pt", "Você pode me explicar como uma geladeira mantém a comida fria? Sempre me perguntei para onde vai o calor."),
    (
        "pt",
        "O relatório trimestral mostra que a receita cresceu doze por cento, principalmente por "
        "causa das vendas no norte.",
    ),
    ("pt", "Escreva um poema curto sobre o mar à noite, com a lua refletida na água calma."),
    (
        "nl",
        "Kun je me uitleggen hoe een koelkast het eten koud houdt? Ik heb me altijd afgevraagd waar "
        "de warmte naartoe gaat.",
    ),
    (
        "nl",
        "Het kwartaalverslag laat zien dat de omzet met twaalf procent is gestegen, vooral door de "
        "verkoop in het noorden.",
    ),
    ("nl", "Schrijf een kort gedicht over de zee in de nacht, met de maan die in het water weerspiegelt."),
    ("ru", "Можешь объяснить, как холодильник сохраняет еду холодной? Мне всегда было интересно, куда уходит тепло."),
    (
        "ru",
        "Квартальный отчёт показывает, что выручка выросла на двенадцать процентов, в основном "
        "благодаря продажам на севере.",
    ),
    ("ru", "Напиши короткое стихотворение о ночном море, в котором луна отражается в воде."),
    (
        "pl",
        "Czy możesz mi wyjaśnić, jak lodówka utrzymuje jedzenie w chłodzie? Zawsze zastanawiałem "
        "się, dokąd idzie ciepło.",
    ),
    ("pl", "Raport kwartalny pokazuje, że przychody wzrosły o dwanaście procent, głównie dzięki sprzedaży na północy."),
    ("pl", "Napisz krótki wiersz o morzu nocą, w którym księżyc odbija się w wodzie."),
    (
        "tr",
        "Bir buzdolabının yiyecekleri nasıl soğuk tuttuğunu bana açıklayabilir misin? Isının nereye "
        "gittğini hep merak etmişimdir.",
    ),
    ("tr", "Çeyrek raporu, gelirin özellikle kuzeydeki satışlar sayesinde yüzde on iki arttığını gösteriyor."),
    ("tr", "Gece denizi hakkında, ayın suya yansıdığı kısa bir şiir yaz."),
    ("zh", "你能解释一下冰箱是怎样让食物保持低温的吗？我一直想知道热量到底去了哪里。"),
    ("zh", "季度报告显示，收入增长了百分之十二，主要是因为北方地区的销售情况很好。"),
    ("zh", "请写一首关于夜晚大海的短诗，描写月亮倒映在平静的水面上。"),
    ("ja", "冷蔵庫がどうやって食べ物を冷たく保っているのか説明してくれますか。熱がどこへ行くのかずっと不思議でした。"),
    ("ja", "四半期報告書によると、主に北部地域での販売が好調だったため、売上は十二パーセント増加しました。"),
    ("ja", "夜の海について、月が静かな水面に映る短い詩を書いてください。"),
    ("ar", "هل يمكنك أن تشرح لي كيف تحافظ الثلاجة على برودة الطعام؟ لطالما تساءلت إلى أين تذهب الحرارة."),
    ("ar", "يُظهر التقرير الفصلي أن الإيرادات نمت بنسبة اثني عشر بالمئة، ويرجع ذلك أساسًا إلى المبيعات في الشمال."),
    ("ar", "اكتب قصيدة قصيرة عن البحر في الليل، والقمر ينعكس على سطح الماء الهادئ."),
]

SHORT = [
    ("en", "What time does the museum open tomorrow?"),
    ("en", "My order arrived broken, I want a refund."),
    ("fr", "À quelle heure ouvre le musée demain ?"),
    ("fr", "Ma commande est arrivée cassée, je veux un remboursement."),
    ("de", "Wann öffnet das Museum morgen früh?"),
    ("de", "Meine Bestellung kam kaputt an, ich möchte mein Geld zurück."),
    ("es", "¿A qué hora abre el museo mañana?"),
    ("es", "Mi pedido llegó roto, quiero que me devuelvan el dinero."),
    ("it", "A che ora apre il museo domani mattina?"),
    ("it", "Il mio ordine è arrivato rotto, voglio un rimborso."),
    ("pt", "A que horas o museu abre amanhã?"),
    ("pt", "Meu pedido chegou quebrado, quero o reembolso."),
    ("nl", "Hoe laat gaat het museum morgen open?"),
    ("nl", "Mijn bestelling kwam kapot aan, ik wil mijn geld terug."),
    ("ru", "Во сколько завтра открывается музей?"),
    ("ru", "Мой заказ пришёл сломанным, я хочу вернуть деньги."),
    ("pl", "O której jutro otwierają muzeum?"),
    ("pl", "Moje zamówienie przyszło zepsute, chcę zwrotu pieniędzy."),
    ("tr", "Müze yarın saat kaçta açılıyor?"),
    ("tr", "Siparişim kırık geldi, paramı geri istiyorum."),
    ("zh", "博物馆明天几点开门？"),
    ("zh", "我的订单到的时候坏了，我想退款。"),
    ("ja", "博物館は明日何時に開きますか。"),
    ("ja", "注文した商品が壊れて届いたので返金してほしいです。"),
    ("ar", "متى يفتح المتحف غدًا؟"),
    ("ar", "وصل طلبي مكسورًا، أريد استرداد أموالي."),
]

#: Texts no language can be told from: a few words, code, numbers. Never flagged.
UNDETERMINED = [
    "ok",
    "Thanks!",
    "42",
    "3.14159 * 2 = 6.28318",
    "def add(a, b):\n    return a + b",
    "SELECT id, name FROM users WHERE age > 30;",
    '{"customer": "Sofia", "quantity": 3}',
    "https://example.com/a/b?c=1",
    "yes",
    "transfer_not_received_by_recipient",
]
