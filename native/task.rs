//! Which task a call runs: the adapter a model's `task_id` input selects and the instruction put
//! before its texts (jina-embeddings-v3), from the call, the options and the snapshot.
use crate::error::{Error, Result};
use crate::model_dir::{ModelDir, Prompts, Tasks};
use crate::settings::Settings;

const QUERY_TASK: &str = "retrieval.query";
const DOCUMENT_TASK: &str = "retrieval.passage";

/// Options of one `embed` call.
#[napi_derive::napi(object)]
#[derive(Debug, Clone, Default)]
pub struct EmbedOptions {
    /// The task of this call (one of `info().tasks`) instead of the default one.
    pub task: Option<String>,
    /// A prompt of the snapshot by name (one of `info().prompts`), put before every text of
    /// this call instead of the query or document prompt.
    pub prompt: Option<String>,
}

/// What one call runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    pub task: Option<String>,
    pub prefix: String,
    /// The value of the model's `task_id` input; `None` when it has none.
    pub id: Option<i64>,
}

pub struct TaskRule {
    tasks: Tasks,
    /// `tasks.names()`, once.
    names: Vec<String>,
    prompts: Prompts,
    /// The model has a `task_id` input, which every call must feed.
    takes_id: bool,
    default_task: Option<String>,
    default_prompt: Option<String>,
    query_prefix: Option<String>,
    document_prefix: Option<String>,
}

impl TaskRule {
    /// Checked at `init`: the `task` option names a known task, and a model with a `task_id`
    /// input knows which adapter queries and documents use.
    pub fn new(dir: &ModelDir, settings: &Settings, takes_id: bool) -> Result<Self> {
        let tasks = dir.tasks.clone();
        if takes_id && tasks.adapters.is_empty() {
            return Err(Error::unsupported(
                &dir.path.join("config.json"),
                "lists no lora_adaptations, which the ONNX file's task_id input needs to mean anything",
            ));
        }
        let rule = TaskRule {
            names: tasks.names(),
            tasks,
            prompts: dir.prompts.clone(),
            takes_id,
            default_task: settings.task.clone(),
            default_prompt: settings.prompt.clone(),
            query_prefix: settings.query_prefix.clone(),
            document_prefix: settings.document_prefix.clone(),
        };
        rule.choose(true, &EmbedOptions::default())?;
        rule.choose(false, &EmbedOptions::default())?;
        Ok(rule)
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The task, prefix and adapter of a call; `task` (the call's) wins over the `task` option,
    /// which wins over `retrieval.query` / `retrieval.passage`. A named prompt (the call's, else
    /// the `prompt` option) wins over `queryPrefix`/`documentPrefix`, which win over a task's
    /// instruction, which wins over the snapshot's query or document prompt.
    pub fn choose(&self, is_query: bool, call: &EmbedOptions) -> Result<Chosen> {
        let mut chosen = self.choose_task(is_query, call.task.as_deref())?;
        if let Some(name) = call.prompt.as_ref().or(self.default_prompt.as_ref()) {
            chosen.prefix = self.prompt(name)?;
        }
        Ok(chosen)
    }

    /// The snapshot's prompt `name`, or an error listing its prompts.
    fn prompt(&self, name: &str) -> Result<String> {
        let named = &self.prompts.named;
        named.get(name).cloned().ok_or_else(|| {
            let names: Vec<String> = named.keys().cloned().collect();
            Error::Input(if names.is_empty() {
                format!("prompt '{name}' was asked for, but this model names no prompts (config_sentence_transformers.json has none)")
            } else {
                format!("unknown prompt '{name}': this model's prompts are {}", quoted(&names))
            })
        })
    }

    /// Every prompt name of the snapshot.
    pub fn prompt_names(&self) -> Vec<String> {
        self.prompts.named.keys().cloned().collect()
    }

    fn choose_task(&self, is_query: bool, task: Option<&str>) -> Result<Chosen> {
        let name = task
            .map(str::to_string)
            .or_else(|| self.default_task.clone())
            .or_else(|| self.retrieval(is_query));
        let (overridden, prompt) = if is_query {
            (&self.query_prefix, &self.prompts.query)
        } else {
            (&self.document_prefix, &self.prompts.document)
        };
        let Some(name) = name else {
            if self.takes_id {
                return Err(Error::Input(format!(
                    "this model selects an adapter by task: pass task (one of {})",
                    self.list()
                )));
            }
            return Ok(Chosen {
                task: None,
                prefix: overridden.clone().unwrap_or_else(|| prompt.clone()),
                id: None,
            });
        };
        let id = self.id(&name)?;
        let prefix = overridden
            .clone()
            .or_else(|| self.tasks.instructions.get(&name).cloned())
            .unwrap_or_else(|| prompt.clone());
        Ok(Chosen {
            task: Some(name),
            prefix,
            id,
        })
    }

    fn id(&self, name: &str) -> Result<Option<i64>> {
        if !self.names.iter().any(|n| n == name) {
            return Err(Error::Input(if self.names.is_empty() {
                format!("task '{name}' was asked for, but this model has no tasks (its config.json lists no lora_adaptations or task_instructions)")
            } else {
                format!(
                    "unknown task '{name}': this model's tasks are {}",
                    self.list()
                )
            }));
        }
        if !self.takes_id {
            return Ok(None);
        }
        match self.tasks.adapter(name) {
            Some(index) => Ok(Some(index as i64)),
            None => Err(Error::Input(format!(
                "task '{name}' has an instruction but no adapter; this model's adapters are {}",
                quoted(&self.tasks.adapters)
            ))),
        }
    }

    fn retrieval(&self, is_query: bool) -> Option<String> {
        let name = if is_query { QUERY_TASK } else { DOCUMENT_TASK };
        self.names
            .iter()
            .any(|n| n == name)
            .then(|| name.to_string())
    }

    fn list(&self) -> String {
        quoted(&self.names)
    }
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Options;

    fn jina() -> Tasks {
        serde_json::from_str(
            r#"{"lora_adaptations":["retrieval.query","retrieval.passage","separation"],
                "task_instructions":{"retrieval.query":"Q: ","retrieval.passage":"D: ","separation":""}}"#,
        )
        .unwrap()
    }

    fn rule(tasks: Tasks, options: Options, takes_id: bool) -> Result<TaskRule> {
        let settings = Settings::resolve(&options, |_| None).unwrap();
        let dir = ModelDir {
            path: "/snapshot".into(),
            config_text: r#"{"model_type":"xlm-roberta"}"#.into(),
            tokenizer_file: "/snapshot/tokenizer.json".into(),
            pooling: crate::pooling::Pooling::Mean,
            prompts: Prompts {
                query: "query: ".into(),
                document: "passage: ".into(),
                named: [
                    ("query", "query: "),
                    ("passage", "passage: "),
                    ("code", "code: "),
                ]
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .into(),
            },
            dense: Vec::new(),
            max_seq_length: None,
            tasks,
            matryoshka_dimensions: None,
        };
        TaskRule::new(&dir, &settings, takes_id)
    }

    #[test]
    fn queries_and_documents_take_the_retrieval_adapters_and_instructions() {
        let r = rule(jina(), Options::default(), true).unwrap();
        let q = r.choose_task(true, None).unwrap();
        assert_eq!((q.prefix.as_str(), q.id), ("Q: ", Some(0)));
        let d = r.choose_task(false, None).unwrap();
        assert_eq!((d.prefix.as_str(), d.id), ("D: ", Some(1)));
        let s = r.choose_task(true, Some("separation")).unwrap();
        assert_eq!((s.prefix.as_str(), s.id), ("", Some(2)));
    }

    #[test]
    fn the_option_and_the_call_pick_another_task_and_prefixes_override() {
        let options = Options {
            task: Some("separation".into()),
            query_prefix: Some("mine: ".into()),
            ..Options::default()
        };
        let r = rule(jina(), options, true).unwrap();
        assert_eq!(r.choose_task(false, None).unwrap().id, Some(2));
        let q = r.choose_task(true, Some("retrieval.passage")).unwrap();
        assert_eq!((q.prefix.as_str(), q.id), ("mine: ", Some(1)));
    }

    #[test]
    fn unknown_tasks_are_refused_with_the_known_ones() {
        let err = rule(jina(), Options::default(), true)
            .unwrap()
            .choose_task(true, Some("clustering"))
            .unwrap_err();
        assert_eq!(err.code(), "ERR_INPUT");
        assert!(err.to_string().contains("'separation'"), "{err}");
        let options = Options {
            task: Some("nope".into()),
            ..Options::default()
        };
        assert!(rule(jina(), options, true).is_err());
        let err = rule(Tasks::default(), Options::default(), false)
            .unwrap()
            .choose_task(true, Some("x"))
            .unwrap_err();
        assert!(err.to_string().contains("has no tasks"), "{err}");
    }

    #[test]
    fn models_without_tasks_keep_their_prompts() {
        let r = rule(Tasks::default(), Options::default(), false).unwrap();
        let q = r.choose_task(true, None).unwrap();
        assert_eq!((q.task, q.prefix.as_str(), q.id), (None, "query: ", None));
        assert!(rule(Tasks::default(), Options::default(), true).is_err());
    }

    #[test]
    fn a_named_prompt_wins_and_an_unknown_one_lists_the_names() {
        let call = |prompt: &str| EmbedOptions {
            prompt: Some(prompt.into()),
            ..Default::default()
        };
        let r = rule(Tasks::default(), Options::default(), false).unwrap();
        assert_eq!(r.choose(false, &call("code")).unwrap().prefix, "code: ");
        assert_eq!(
            r.choose(true, &EmbedOptions::default()).unwrap().prefix,
            "query: "
        );
        let err = r.choose(true, &call("nl2code")).unwrap_err();
        assert_eq!(err.code(), "ERR_INPUT");
        assert!(
            err.to_string().contains("'code', 'passage', 'query'"),
            "{err}"
        );
        let options = Options {
            prompt: Some("code".into()),
            query_prefix: Some("ignored: ".into()),
            ..Default::default()
        };
        let by_option = rule(Tasks::default(), options, false).unwrap();
        assert_eq!(
            by_option
                .choose(true, &EmbedOptions::default())
                .unwrap()
                .prefix,
            "code: "
        );
        let unknown = Options {
            prompt: Some("x".into()),
            ..Default::default()
        };
        assert!(
            rule(Tasks::default(), unknown, false).is_err(),
            "checked at init"
        );
    }
}
